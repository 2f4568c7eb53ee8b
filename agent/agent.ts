import type { MqttClient } from 'mqtt';
import type { Logger } from '../src/shared/logger.js';
import { decode, PushMessage, SCHEMA_VERSION, type AgentStatus, type AppState, type Heartbeat } from '../src/shared/messages.js';
import { connectMqtt } from '../src/shared/mqtt-connection.js';
import { agentHeartbeatTopic, agentStatusTopic, appStateTopic, headFilter } from '../src/shared/topics.js';
import { VERSION } from '../src/shared/version.js';
import { AppRunner } from './app-runner.js';
import type { AgentConfig } from './config.js';
import { readHostFacts } from './host-facts.js';
import { appFollowsPush } from './match.js';
import { startOrchestratorNode } from './node/orchestrator-node.js';

export type RunningAgent = { apps: AppRunner[]; mqtt: MqttClient; stop(): Promise<void> };

/**
 * The agent: follows the retained head of every ref its apps track (so it converges after being
 * offline), hands matching pushes to each app's worker, and reports state and heartbeats.
 */
export async function startAgent(config: AgentConfig, log: Logger): Promise<RunningAgent> {
  // Never let git wait for a password prompt: a service has no one to answer it.
  process.env.GIT_TERMINAL_PROMPT = '0';
  const startedAt = new Date().toISOString();
  const status = (state: AgentStatus['state']): string =>
    JSON.stringify({ v: SCHEMA_VERSION, agent: config.id, state, labels: config.labels, version: VERSION, startedAt, at: new Date().toISOString() } satisfies AgentStatus);
  const statusTopic = agentStatusTopic(config.id);

  log.info({ url: config.mqtt.url, agent: config.id }, 'connecting to MQTT broker');
  const mqtt = await connectMqtt(config.mqtt, {
    will: { topic: statusTopic, payload: status('offline'), retain: true, qos: 1 },
    onRetry: (err) => log.warn({ err: err.message }, 'MQTT broker unreachable; retrying'),
  });
  const publishState = (state: AppState) => {
    mqtt.publish(appStateTopic(config.id, state.app), JSON.stringify(state), { qos: 1, retain: true }, (err) => {
      if (err) log.warn({ app: state.app, err: err.message }, 'state not published');
    });
  };
  const apps = await Promise.all(config.apps.map((app) => AppRunner.create(app, config.id, log, publishState)));

  const onMessage = (topic: string, payload: Buffer) => {
    if (payload.length === 0) return; // a cleared head: the ref was deleted
    const push = decode(PushMessage, payload);
    if (!push.ok) {
      log.warn({ topic, error: push.error }, 'ignored malformed push message');
      return;
    }
    const p = push.value;
    for (const runner of apps.filter((a) => appFollowsPush(a.app, p))) {
      // An annotated tag's `after` is the tag object; the head commit is what gets checked out.
      const sha = p.headCommit?.id ?? p.after;
      const taken = runner.worker.offer({ sha, ref: p.ref, deliveryId: p.deliveryId, receivedAt: p.receivedAt });
      log.debug({ app: runner.app.name, sha, ref: p.ref, taken }, 'push offered');
    }
  };
  mqtt.on('message', onMessage);

  const filters = [...new Set(config.apps.map((a) => headFilter(a.repo)))];
  const announce = async () => {
    await mqtt.publishAsync(statusTopic, status('online'), { qos: 1, retain: true });
    for (const app of apps) publishState(app.current);
    // Subscribing again on every connect re-delivers retained heads: the convergence point.
    if (filters.length) await mqtt.subscribeAsync(filters, { qos: 1 });
    log.info({ agent: config.id, apps: apps.map((a) => a.app.name), filters }, 'agent online');
  };
  mqtt.on('connect', () => {
    announce().catch((err) => log.warn({ err: (err as Error).message }, 'announce failed'));
  });
  mqtt.on('offline', () => log.warn('MQTT broker unreachable; retrying'));
  mqtt.on('error', (err) => log.warn({ err: err.message }, 'MQTT error'));
  // Ready before "agent online", so whoever waits for that can send it playbook commands.
  const node = config.orchestrator ? await startOrchestratorNode(config, config.orchestrator, log.child({ role: 'orchestrator' })) : undefined;
  await announce();

  const beat = async () => {
    const message: Heartbeat = { v: SCHEMA_VERSION, agent: config.id, at: new Date().toISOString(), host: await readHostFacts() };
    if (mqtt.connected) await mqtt.publishAsync(agentHeartbeatTopic(config.id), JSON.stringify(message), { qos: 0, retain: true });
  };
  const beatSafely = () => beat().catch((err) => log.warn({ err: (err as Error).message }, 'heartbeat failed'));
  void beatSafely();
  const heartbeat = setInterval(beatSafely, config.heartbeatSeconds * 1000);

  return {
    apps,
    mqtt,
    async stop() {
      clearInterval(heartbeat);
      mqtt.off('message', onMessage);
      // Let running updates finish: a half-applied update is worse than a slower stop.
      await Promise.all(apps.map((a) => a.worker.idle()));
      await node?.stop();
      await mqtt.publishAsync(statusTopic, status('offline'), { qos: 1, retain: true }).catch(() => undefined);
      await mqtt.endAsync();
      log.info('agent stopped');
    },
  };
}

import { setFlagsFromString } from 'node:v8';
import type { ISubscriptionMap, MqttClient } from 'mqtt';
import type { Logger } from '../src/shared/logger.js';
import type { Teardown } from '../src/shared/startup.js';
import { lockStateDir } from '../src/shared/state-dir-lock.js';
import { AgentDirective, RetryRequest } from '../src/shared/contract/rollout-messages.js';
import { decode, PushMessage, SCHEMA_VERSION, type AgentStatus, type AppState, type Heartbeat } from '../src/shared/messages.js';
import { refuseHead } from '../src/shared/head-check.js';
import { closeMqtt, connectMqtt } from '../src/shared/mqtt-connection.js';
import { appFollowsPush, pushedSha } from '../src/shared/push-match.js';
import { agentHeartbeatTopic, agentPinTopic, agentRefusedTopic, agentRetryTopic, agentRollbackTopic, agentStatusTopic, appStateTopic, DEFAULT_ENV, ENV_LABEL, HEAD_SUBSCRIPTION_QOS, headFilter } from '../src/shared/topics.js';
import { SemaphoreClient } from '../src/semaphore-client/client.js';
import { topicMatches } from '../src/shared/topic-match.js';
import { VERSION } from '../src/shared/version.js';
import type { AppRunner } from './app-runner.js';
import type { AgentConfig } from './config.js';
import { readHostFacts } from './host-facts.js';
import { openApp } from './open-app.js';
import { SpareProcesses } from './spare-process.js';
import { RolloutGate } from './rollout-gate.js';
import { SignedInbox } from './signed-inbox.js';
// Only some agents run a playbook node, jobs or services: those modules are loaded when configured.
import type { AgentJobs } from './jobs/agent-jobs.js';
import type { AgentServicesOnMqtt } from './services/agent-services-mqtt.js';
import { redactUrl } from '../src/shared/mqtt-url.js';

export type RunningAgent = { apps: AppRunner[]; mqtt: MqttClient; stop(): Promise<void> };

/**
 * The agent: follows the retained head of every ref its apps track (so it converges after being
 * offline), hands matching pushes to each app's runner, and reports state and heartbeats. What
 * a failed start opened is closed through `teardown` (see startOrUndo).
 */
export async function startAgent(config: AgentConfig, log: Logger, teardown?: Teardown): Promise<RunningAgent> {
  // Never let git wait for a password prompt: a service has no one to answer it.
  process.env.GIT_TERMINAL_PROMPT = '0';
  const startedAt = new Date().toISOString();
  let jobs: AgentJobs | undefined;
  let services: AgentServicesOnMqtt | undefined;
  const status = (state: AgentStatus['state']): string =>
    JSON.stringify({ v: SCHEMA_VERSION, agent: config.id, state, labels: config.labels, version: VERSION, startedAt, at: new Date().toISOString(), ...(jobs && { jobs: jobs.offer() }), ...(services && { services: services.offer() }) } satisfies AgentStatus);
  const statusTopic = agentStatusTopic(config.id);
  // One agent per state directory: its journals say what each app's working copy is doing.
  const lock = lockStateDir(config.stateDir, 'agent');
  teardown?.add('state directory lock', () => lock.release());
  const inbox = SignedInbox.create(config, log.child({ role: 'verify' }));

  log.info({ url: redactUrl(config.mqtt.url), agent: config.id }, 'connecting to MQTT broker');
  const mqtt = await connectMqtt(config.mqtt, {
    will: { topic: statusTopic, payload: status('offline'), retain: true, qos: 1 },
    onRetry: (err) => log.warn({ err: err.message }, 'MQTT broker unreachable; retrying'),
  });
  teardown?.add('MQTT client', () => mqtt.endAsync(true));
  const publishState = (state: AppState) => {
    mqtt.publish(appStateTopic(config.id, state.app), JSON.stringify(state), { qos: 1, retain: true }, (err) => {
      if (err) log.warn({ app: state.app, err: err.message }, 'state not published');
    });
  };
  const gate = config.apps.some((a) => a.rollout)
    ? new RolloutGate(new SemaphoreClient(mqtt, { prefix: config.semaphore.prefix, open: (topic, payload, deliver) => inbox.open(topic, payload, deliver) }), config.id, config.labels[ENV_LABEL] ?? DEFAULT_ENV, rolloutBudgetSeconds(config), log.child({ role: 'rollout' }))
    : null;
  // Every app's steps (git, update, restart) start from these shells forked ahead of time; an
  // agent with no apps (only jobs, services or a playbook node) forks none.
  const spares = config.apps.length > 0 ? new SpareProcesses() : undefined;
  const apps = await Promise.all(config.apps.map((app) => openApp(app, config.id, config.stateDir, log, publishState, gate, spares)));
  const byName = new Map(apps.map((a) => [a.app.name, a]));
  /** The newest push per retained head topic: what an app goes back to when it is unpinned. */
  const heads = new Map<string, PushMessage>();

  const offerPush = (p: PushMessage, runners: readonly AppRunner[]) => {
    const target = { sha: pushedSha(p), ref: p.ref, deliveryId: p.deliveryId, receivedAt: p.receivedAt, direct: false, key: `${p.deliveryId}@${p.receivedAt}` };
    for (const runner of runners.filter((a) => appFollowsPush(a.app, p))) {
      log.debug({ app: runner.app.name, sha: target.sha, ref: p.ref, taken: runner.offer(target) }, 'push offered');
    }
  };
  const onHead = (topic: string, payload: Buffer) => {
    if (payload.length === 0) {
      heads.delete(topic); // a cleared head: the ref was deleted
      return;
    }
    const push = decode(PushMessage, payload);
    if (!push.ok) {
      log.warn({ topic, error: push.error }, 'ignored malformed push message');
      return;
    }
    const refusal = refuseHead(topic, push.value, Date.now());
    if (refusal) {
      log.warn({ topic, delivery: push.value.deliveryId, reason: refusal }, 'refused retained head');
      const refused = { topic, deliveryId: push.value.deliveryId, reason: refusal, at: new Date().toISOString() };
      for (const runner of apps.filter((a) => topicMatches(headFilter(a.app.repo), topic))) runner.refused(refused);
      return;
    }
    heads.set(topic, push.value);
    offerPush(push.value, apps);
  };
  /** A pin (retained; empty = unpinned) or a rollback from the hub: only a SHA, applied with the app's own steps. */
  const onDirective = (topic: string, payload: Buffer) => {
    const pinnedApp = topic.startsWith(pinPrefix) ? topic.slice(pinPrefix.length) : null;
    if (pinnedApp !== null && payload.length === 0) {
      const runner = byName.get(pinnedApp);
      if (!runner || runner.pinnedSha === null) return;
      log.info({ app: pinnedApp }, 'unpinned; following pushes again');
      runner.pin(null);
      for (const p of heads.values()) offerPush(p, [runner]);
      return;
    }
    const d = decode(AgentDirective, payload);
    const runner = d.ok ? byName.get(d.value.app) : undefined;
    if (!d.ok || !runner || d.value.sha === null) {
      log.warn({ topic, error: d.ok ? `no app "${d.value.app}" with a SHA here` : d.error }, 'ignored malformed directive');
      return;
    }
    const { kind, sha, at, rolloutId } = d.value;
    log.info({ app: runner.app.name, kind, sha, rollout: rolloutId, by: d.value.by }, kind === 'pin' ? 'pinned by the hub' : 'rollback requested by the hub');
    const target = runner.directTarget(sha, `${kind}:${rolloutId ?? sha}:${at}`, at);
    if (kind === 'pin') {
      if (runner.pinnedSha !== sha) runner.pin(target);
    } else runner.offer(target);
  };
  const onRetry = (payload: Buffer) => {
    const d = decode(RetryRequest, payload);
    const runner = d.ok ? byName.get(d.value.app) : undefined;
    if (!d.ok || !runner) return void log.warn({ error: d.ok ? `no app "${d.value.app}" here` : d.error }, 'ignored malformed retry request');
    runner.retry(d.value.requestId);
  };
  const pinPrefix = agentPinTopic(config.id, '');
  const retryTopic = agentRetryTopic(config.id);
  const { directives: directiveFilters, heads: filters } = agentSubscriptions(config);
  /** Runners a refused message was meant for: those following the head's repo, or the app a pin names. */
  const addressees = (topic: string): AppRunner[] =>
    topic.startsWith(pinPrefix) ? apps.filter((a) => a.app.name === topic.slice(pinPrefix.length)) : apps.filter((a) => topicMatches(headFilter(a.app.repo), topic));
  inbox.onRefused((refusal) => {
    mqtt.publish(agentRefusedTopic(config.id), JSON.stringify(refusal), { qos: 1 }, (err) => err && log.warn({ err: err.message }, 'refusal not reported'));
    for (const runner of addressees(refusal.topic)) runner.refused({ topic: refusal.topic, deliveryId: null, reason: `${refusal.reason}: ${refusal.detail}`, at: refusal.at });
  });
  inbox.onHeld((topic, problem) => addressees(topic).forEach((runner) => runner.held(problem)));
  const onMessage = (topic: string, raw: Buffer) => {
    if (topic === retryTopic) return onRetry(raw);
    const directive = directiveFilters.some((f) => topicMatches(f, topic));
    if (!directive && !filters.some((f) => topicMatches(f, topic))) return;
    inbox.open(topic, raw, (payload) => (directive ? onDirective(topic, payload) : onHead(topic, payload)));
  };
  mqtt.on('message', onMessage);

  const announce = async (sessionPresent: boolean) => {
    await mqtt.publishAsync(statusTopic, status('online'), { qos: 1, retain: true });
    for (const app of apps) publishState(app.current);
    // Pins first: their retained messages then arrive before any head they override.
    if (filters.length) await mqtt.subscribeAsync(directiveFilters, { qos: 1 });
    // Subscribing again on every connect re-delivers retained heads: the convergence point.
    if (filters.length) await subscribeHeads(mqtt, filters, sessionPresent);
    await jobs?.subscribe();
    await services?.subscribe();
    log.info({ agent: config.id, apps: apps.map((a) => a.app.name), filters }, 'agent online');
  };
  mqtt.on('connect', (connack) => {
    gate?.reconnected();
    announce(connack.sessionPresent).catch((err) => log.warn({ err: (err as Error).message }, 'announce failed'));
  });
  mqtt.on('offline', () => log.warn('MQTT broker unreachable; retrying'));
  mqtt.on('error', (err) => log.warn({ err: err.message }, 'MQTT error'));
  // The compilers main.ts leaves off for an agent (memory) are turned back on for an orchestrator
  // node: it starts actions at an instant, and interpreted code widened the skew.
  if (config.orchestrator) setFlagsFromString('--turbofan --sparkplug');
  // Ready before "agent online", so whoever waits for that can send it playbook commands.
  const node = config.orchestrator && (await (await import('./node/orchestrator-node.js')).startOrchestratorNode(config, config.orchestrator, inbox, log.child({ role: 'orchestrator' })));
  if (node) teardown?.add('orchestrator node', () => node.stop());
  const republish = () => void mqtt.publishAsync(statusTopic, status('online'), { qos: 1, retain: true }).catch((err: Error) => log.warn({ err: err.message }, 'status not published'));
  jobs = config.jobs && (await (await import('./jobs/agent-jobs.js')).startAgentJobs({ ...config, jobs: config.jobs }, mqtt, inbox, republish, log.child({ role: 'jobs' })));
  if (jobs) teardown?.add('jobs', () => jobs!.stop());
  services = config.services && (await (await import('./services/agent-services-mqtt.js')).startAgentServicesOnMqtt({ ...config, services: config.services }, mqtt, inbox, republish, log.child({ role: 'services' })));
  if (services) teardown?.add('services', () => services!.stop());
  for (const app of apps) app.start();
  // mqtt.js knows no filter yet: this SUBSCRIBE goes out whatever the session.
  await announce(false);

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
      inbox.stop();
      // Running updates finish; waits for a rollout grant or a retry end (see AppRunner.stop).
      await Promise.all(apps.map((a) => a.stop()));
      spares?.close();
      await node?.stop();
      await jobs?.stop();
      await services?.stop();
      await closeMqtt(mqtt, { topic: statusTopic, payload: status('offline') });
      lock.release();
      log.info('agent stopped');
    },
  };
}

/**
 * Subscribes to the heads at HEAD_SUBSCRIPTION_QOS, so that the broker sends each one's retained
 * message now. On a resumed persistent session (CONNACK sessionPresent) mqtt.js sends no SUBSCRIBE
 * for filters it already has, and the broker would then send nothing: a head lost in flight at
 * QoS 0 would stay lost. So there the SUBSCRIBE is sent anyway.
 */
export function subscribeHeads(mqtt: MqttClient, filters: readonly string[], sessionPresent: boolean): Promise<unknown> {
  const subs = Object.fromEntries(filters.map((f) => [f, { qos: HEAD_SUBSCRIPTION_QOS }]));
  return mqtt.subscribeAsync({ ...subs, resubscribe: sessionPresent } as ISubscriptionMap);
}

/** What the agent subscribes to: its directives (pins, rollback, retry) and the heads its apps follow (also what `pushfleet doctor` tries). */
export function agentSubscriptions(config: { id: string; apps: readonly { repo: string }[] }): { directives: string[]; heads: string[] } {
  return {
    directives: [agentPinTopic(config.id, '+'), agentRollbackTopic(config.id), agentRetryTopic(config.id)],
    heads: [...new Set(config.apps.map((a) => headFilter(a.repo)))],
  };
}

/** How long a granted update may take at most: fetch, checkout and every command twice (a rollback), two health checks. */
function rolloutBudgetSeconds(config: AgentConfig): number {
  return Math.max(...config.apps.map((a) => 300 + a.fetchTimeout + a.stepTimeout * (a.update.length + 2) * 2 + (a.health?.timeout ?? 0) * 2));
}

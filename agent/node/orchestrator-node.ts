import type { Logger } from '../../src/shared/logger.js';
import { decode, SCHEMA_VERSION } from '../../src/shared/messages.js';
import { NodeCommand, TimeReply, type NodeInfo, type TimeRequest } from '../../src/shared/contract/orchestrator-messages.js';
import { connectMqtt, type MqttConnectionConfig } from '../../src/shared/mqtt-connection.js';
import { nodeCommandTopic, nodeInfoTopic, nodeResultTopic, seedCommandTopic, seedResultTopic, seedStatusTopic, TIME_REQUEST, timeReplyTopic } from '../../src/shared/topics.js';
import { preciseNow } from '../../src/hub/engines/orchestrator/precise-time.js';
import { commandEnv } from '../command-env.js';
import { actionLauncher } from './action-launcher.js';
import { ClockSync } from './clock-sync.js';
import { NodeExecutor, SEED_RUN } from './node-executor.js';
import { timedGateShell } from './timed-gate.js';
import type { OrchestratorNodeConfig } from './node-config.js';
import type { SignedInbox } from '../signed-inbox.js';

export type OrchestratorNode = { stop(): Promise<void> };

/**
 * Until the first clock measurement succeeds (the hub may start later), retry this often; then
 * measure a few more times at that pace, since the first one is often taken on a busy host.
 */
const EARLY_SYNC_MS = 5000;
const EARLY_SYNCS = 3;

/**
 * The agent's playbook-node role, over MQTT: seed commands on <root>/<node>/COMMAND, native
 * commands from the hub's orchestrator engine, and the clock pings that let it start on time.
 * It uses a connection of its own, because the seed's OFFLINE last will needs one.
 */
/** `inbox`: the agent's signature check (SignedInbox): `open` calls `act` with the inner payload unless refused. */
export async function startOrchestratorNode(
  agent: { id: string; mqtt: MqttConnectionConfig },
  cfg: OrchestratorNodeConfig,
  inbox: Pick<SignedInbox, 'open' | 'refuse'>,
  log: Logger,
): Promise<OrchestratorNode> {
  if (cfg.acceptSeedCommands) log.warn({ 'orchestrator.acceptSeedCommands': true }, 'seed commands carry no signature: anyone who may publish on the broker can run this node\'s actions');
  const seedNode = cfg.node ?? agent.id;
  const statusTopic = seedStatusTopic(cfg.root, seedNode);
  const topics = { seed: seedCommandTopic(cfg.root, seedNode), native: nodeCommandTopic(agent.id), time: timeReplyTopic(agent.id) };
  // A fixed clientId gets a suffix, or this connection and the agent's would keep replacing each other.
  const clientId = agent.mqtt.clientId && `${agent.mqtt.clientId.slice(0, 59)}-node`;
  const mqtt = await connectMqtt(
    { ...agent.mqtt, clientId },
    {
      will: { topic: statusTopic, payload: 'OFFLINE', retain: true, qos: 1 },
      onRetry: (err) => log.warn({ err: err.message }, 'MQTT broker unreachable; retrying'),
    },
  );
  const publish = (topic: string, payload: string, opts: { qos: 0 | 1; retain: boolean }) =>
    mqtt.publish(topic, payload, opts, (err) => err && log.warn({ topic, err: err.message }, 'orchestrator node publish failed'));

  const clock = new ClockSync({
    send: (seq, t0) => publish(TIME_REQUEST, JSON.stringify({ v: SCHEMA_VERSION, agent: agent.id, seq, t0 } satisfies TimeRequest), { qos: 0, retain: false }),
    now: preciseNow,
    samples: cfg.clock.samples,
    replyTimeoutMs: 1000,
    gapMs: 20,
    keepBetterMs: 3 * cfg.clock.resyncSeconds * 1000,
  });
  const gate = await timedGateShell(commandEnv({}));
  if ('bash' in gate) log.info({ bash: gate.bash }, 'timed starts are released by their own gate (bash)');
  else log.warn({ why: gate.why }, 'timed starts are released by the agent, less precisely');
  const executor = new NodeExecutor({
    actions: cfg.actions,
    queueSize: cfg.queueSize,
    agent: agent.id,
    seedNode,
    launch: actionLauncher({ agent: agent.id, seedNode }, cfg, 'bash' in gate, log),
    status: (word) => publish(statusTopic, word, { qos: 1, retain: true }),
    result: (r) => publish(r.runId === SEED_RUN ? seedResultTopic(cfg.root, seedNode) : nodeResultTopic(agent.id), JSON.stringify(r), { qos: 1, retain: false }),
    clock: { now: preciseNow, offsetMs: () => clock.estimate?.offsetMs ?? null, errorMs: () => clock.estimate?.errorMs ?? null },
    log,
  });

  const onMessage = (topic: string, payload: Buffer) => {
    const t = preciseNow(); // first: the arrival time of a clock reply or a command
    if (topic === topics.time) {
      const reply = decode(TimeReply, payload);
      if (reply.ok) clock.onReply(reply.value, t);
    } else if (topic === topics.seed) {
      if (cfg.acceptSeedCommands) executor.seedCommand(payload.toString('utf8'));
      else {
        inbox.refuse(topic, 'unsigned', 'seed commands carry no signature; set orchestrator.acceptSeedCommands: true to run them');
        publish(statusTopic, 'REFUSED', { qos: 1, retain: true });
      }
    } else if (topic === topics.native) {
      inbox.open(topic, payload, (opened) => {
        const cmd = decode(NodeCommand, opened);
        if (!cmd.ok) log.warn({ error: cmd.error }, 'ignored malformed node command');
        else if (cmd.value.kind === 'start') executor.nativeStart(cmd.value, t);
        else executor.nativeStop(cmd.value.runId, cmd.value.stepId);
      });
    }
  };
  mqtt.on('message', onMessage);

  const announce = async () => {
    await mqtt.subscribeAsync({ [topics.seed]: { qos: 1 }, [topics.native]: { qos: 1 }, [topics.time]: { qos: 0 } });
    await mqtt.publishAsync(statusTopic, 'ALIVE', { qos: 1, retain: true });
    log.info({ root: cfg.root, node: seedNode, actions: Object.keys(cfg.actions) }, 'orchestrator node ready');
  };
  mqtt.on('connect', () => void announce().catch((err: Error) => log.warn({ err: err.message }, 'orchestrator node announce failed')));
  await announce();

  let syncTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  let synced = 0;
  const sync = async () => {
    const estimate = await clock.measure();
    if (stopped) return;
    if (estimate) {
      synced++;
      const info: NodeInfo = { v: SCHEMA_VERSION, agent: agent.id, seedNode, actions: Object.keys(cfg.actions), clock: estimate, at: preciseNow() };
      publish(nodeInfoTopic(agent.id), JSON.stringify(info), { qos: 1, retain: true });
      log.info({ offsetMs: estimate.offsetMs, rttMs: estimate.rttMs, errorMs: estimate.errorMs }, 'clock synchronised');
    } else {
      log.warn('no clock reply from the hub (is it running?); native playbooks wait for one');
    }
    syncTimer = setTimeout(() => void sync(), synced >= EARLY_SYNCS ? cfg.clock.resyncSeconds * 1000 : EARLY_SYNC_MS);
  };
  void sync();

  return {
    async stop() {
      stopped = true;
      clearTimeout(syncTimer);
      mqtt.off('message', onMessage);
      await executor.stopAll();
      // Only while connected: a QoS 1 publish to a broker that is gone would wait forever.
      if (mqtt.connected) {
        await mqtt.publishAsync(statusTopic, 'OFFLINE', { qos: 1, retain: true }).catch(() => undefined);
        await mqtt.publishAsync(nodeInfoTopic(agent.id), '', { qos: 1, retain: true }).catch(() => undefined);
      }
      await mqtt.endAsync(!mqtt.connected);
      log.info('orchestrator node stopped');
    },
  };
}

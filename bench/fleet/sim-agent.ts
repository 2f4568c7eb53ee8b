/**
 * A simulated agent speaking the real agent protocol over MQTT, for benchmarks and scale tests:
 * retained status (env "bench") and app state (web follows main); on a new SHA it either
 * registers in the rollout's channel with the SemaphoreClient (uid = agent id), waits for its go,
 * sleeps a fake update step, publishes its new app state and releases, as agent/app-runner does
 * (`rollout: true`), or reports the SHA deployed at once.
 *
 * Two ways to learn of a push: `connect` (the rollouts bench) reads the push event on one
 * connection that is never re-established; `start` (the fleet simulator) is the agent as
 * agent/agent.ts runs it: its own account, connectMqtt's reconnects, a retained offline will, a
 * heartbeat, and on every connect the same announce (status, app state, then its directives and
 * the retained heads, subscribed with `agentSubscriptions`). Signed messages are unwrapped, not
 * verified: checking the hub's signature is the agent's cost, not the hub's.
 */
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { parseEnvelope } from '../../src/shared/signing/envelope.js';
import { SemaphoreClient } from '../../src/semaphore-client/client.js';
import { connectMqtt, MqttConnectionConfig } from '../../src/shared/mqtt-connection.js';
import { decode, PushMessage, SCHEMA_VERSION, type AgentStatus, type AppState, type Heartbeat } from '../../src/shared/messages.js';
import { pushedSha } from '../../src/shared/push-match.js';
import { agentHeartbeatTopic, agentStatusTopic, appStateTopic, HEAD_SUBSCRIPTION_QOS, pushTopic, rolloutChannel, rolloutId } from '../../src/shared/topics.js';
import { topicMatches } from '../../src/shared/topic-match.js';
import { agentSubscriptions } from '../../agent/agent.js';

export const SIM_ENV = 'bench';
export const SIM_APP = 'web';
export const SIM_REPO = 'acme/web';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const newSha = () => randomBytes(20).toString('hex');

/** Times (performance.now) of one round, shared by the simulated agents. */
export type RoundLog = { pushedAt: number; pushSeen: number[]; grants: number[]; releases: number[]; updating: number; maxUpdating: number; errors: string[] };
export const emptyLog = (): RoundLog => ({ pushedAt: 0, pushSeen: [], grants: [], releases: [], updating: 0, maxUpdating: 0, errors: [] });

/** How a fleet agent (`SimAgent.start`) runs, and what it tells its owner. */
export type FleetAgentOptions = {
  /** The broker URL, without credentials. */
  url: string;
  /** Its broker account (role agent, named as the agent). */
  password: string;
  /** Updates wait for the rollout's go (app state `rollout: true`); else a new head is deployed at once. */
  rollout: boolean;
  /** The fake update step: how long after a new head it reports the SHA deployed. */
  stepMs: number;
  heartbeatMs: number;
  /** Each time it is connected and announced: status online, state, subscriptions acknowledged. */
  onAnnounced(agent: SimAgent): void;
  /** Each head it receives (retained or live), with the SHA it now runs. */
  onHead(agent: SimAgent, sha: string): void;
  onError(agent: SimAgent, err: Error): void;
};

/** One simulated agent: retained status and app state, and a fake update on each push, admitted by the rollout when `rollout`. */
export class SimAgent {
  sha = newSha();
  private readonly sem: SemaphoreClient;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The SHA being updated to, so a head delivered again meanwhile does not start a second update. */
  private updatingTo: string | undefined;

  private constructor(
    readonly id: string,
    private readonly client: MqttClient,
    private readonly stepMs: number,
    private readonly log: () => RoundLog,
    private readonly rollout = true,
  ) {
    // Grants on rollout channels come signed; a simulated host reads them as the real agent does after checking.
    this.sem = new SemaphoreClient(client, { open: (_topic, payload, deliver) => deliver(unwrap(payload)) });
  }

  /** The rollouts bench's agent: one connection (`url` with its credentials), acting on the push event. */
  static async connect(id: string, url: string, stepMs: number, log: () => RoundLog): Promise<SimAgent> {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, clientId: `bench-${id}` });
    const agent = new SimAgent(id, client, stepMs, log);
    client.on('message', (topic, payload) => {
      if (topic !== pushTopic(SIM_REPO)) return;
      log().pushSeen.push(performance.now());
      const push = decodePushOnce(payload);
      if (push.ok) void agent.update(push.value.after).catch((err: Error) => log().errors.push(`${id}: ${err.message}`));
    });
    await client.subscribeAsync(pushTopic(SIM_REPO), { qos: 1 });
    await client.publishAsync(agentStatusTopic(id), agent.status('online'), { qos: 1, retain: true });
    await agent.report('deployed', null);
    return agent;
  }

  /** The fleet simulator's agent, connected and reconnecting as agent/agent.ts is; resolves once first announced. */
  static async start(id: string, opts: FleetAgentOptions): Promise<SimAgent> {
    const cfg = MqttConnectionConfig.parse({ url: opts.url, username: id, password: opts.password });
    let agent: SimAgent | undefined;
    const client = await connectMqtt(cfg, {
      will: { topic: agentStatusTopic(id), payload: statusMessage(id, 'offline'), retain: true, qos: 1 },
      onRetry: (err) => agent && opts.onError(agent, err),
    });
    agent = new SimAgent(id, client, opts.stepMs, emptyLog, opts.rollout);
    const { directives, heads } = agentSubscriptions({ id, apps: [{ repo: SIM_REPO }] });
    const self = agent;
    client.on('message', (topic, payload) => {
      if (!heads.some((f) => topicMatches(f, topic)) || payload.length === 0) return;
      const push = decodePushOnce(payload);
      if (!push.ok) return opts.onError(self, new Error(`${topic}: ${push.error}`));
      const sha = pushedSha(push.value);
      // Delivered again (a reconnect): it runs that head already, or is on its way to it.
      if (sha === self.updatingTo) return;
      if (sha === self.sha) return opts.onHead(self, sha);
      if (!self.rollout) {
        self.sha = sha;
        // The fake update step, then its report (at once with stepMs 0, as an agent reports "updating").
        void sleep(self.stepMs).then(() => self.report('deployed', sha)).catch((err: Error) => opts.onError(self, err));
        return opts.onHead(self, sha);
      }
      self.updatingTo = sha;
      self.update(sha).then(
        () => opts.onHead(self, sha),
        (err: Error) => opts.onError(self, err),
      ).finally(() => (self.updatingTo = undefined));
    });
    const announce = async () => {
      await client.publishAsync(agentStatusTopic(id), self.status('online'), { qos: 1, retain: true });
      await self.report('deployed', null);
      // Pins first, then heads, as the agent does: subscribing again on every connect re-delivers the retained head.
      await client.subscribeAsync(directives, { qos: 1 });
      await client.subscribeAsync(heads, { qos: HEAD_SUBSCRIPTION_QOS });
      opts.onAnnounced(self);
    };
    client.on('connect', () => void announce().catch((err: Error) => opts.onError(self, err)));
    client.on('error', (err) => opts.onError(self, err));
    const beat = () => client.connected && client.publish(agentHeartbeatTopic(id), heartbeatMessage(id), { qos: 0, retain: true });
    agent.heartbeat = setInterval(beat, opts.heartbeatMs);
    // The first beat at a random point of the interval, so a fleet started at once does not beat in step.
    setTimeout(beat, Math.random() * opts.heartbeatMs).unref();
    await announce();
    return agent;
  }

  private status(state: AgentStatus['state']): string {
    return statusMessage(this.id, state);
  }

  private report(state: AppState['state'], targetSha: string | null): Promise<unknown> {
    const msg: AppState = {
      v: SCHEMA_VERSION, agent: this.id, app: SIM_APP, repo: SIM_REPO, ref: 'refs/heads/main', state, sha: this.sha, targetSha, lastError: null, durations: {},
      updatedAt: new Date().toISOString(), follows: { kind: 'branch', pattern: 'main' }, rollout: this.rollout, pinnedSha: null, deliveryId: null, retrying: null, interrupted: null, refusedHead: null, retryRequest: null, refused: null,
    };
    return this.client.publishAsync(appStateTopic(this.id, SIM_APP), JSON.stringify(msg), { qos: 1, retain: true });
  }

  /** Waits for the grant, runs the fake step, reports, then gives the slot back (as agent/app-runner does). */
  private async update(sha: string): Promise<void> {
    const lease = await this.sem.acquire(rolloutChannel(rolloutId(SIM_APP, SIM_ENV, sha)), { uid: this.id, timeout: 600, replace: true });
    const log = this.log();
    log.grants.push(performance.now());
    log.maxUpdating = Math.max(log.maxUpdating, ++log.updating);
    await sleep(this.stepMs);
    this.sha = sha;
    await this.report('deployed', sha);
    log.updating--;
    log.releases.push(performance.now());
    await lease.release();
  }

  close(): Promise<void> {
    clearInterval(this.heartbeat);
    return this.client.endAsync(true);
  }
}

/**
 * The last push (a head, or the push event itself) decoded in this process, by its bytes. A push
 * reaches every simulated agent of a process as the same bytes; decoding them (envelope, then zod)
 * once per agent was the simulator's largest cost of its own, taken from the cores the hub runs
 * on. A real agent decodes its one copy.
 */
let lastHead: { bytes: Buffer; push: ReturnType<typeof decodePush> } | undefined;
const decodePush = (payload: Buffer) => decode(PushMessage, unwrap(payload));
function decodePushOnce(payload: Buffer): ReturnType<typeof decodePush> {
  if (lastHead?.bytes.equals(payload)) return lastHead.push;
  lastHead = { bytes: Buffer.from(payload), push: decodePush(payload) };
  return lastHead.push;
}

const unwrap = (payload: Buffer): Buffer => {
  const envelope = parseEnvelope(payload);
  return envelope ? Buffer.from(envelope.payload) : payload;
};

function statusMessage(agent: string, state: AgentStatus['state']): string {
  return JSON.stringify({ v: SCHEMA_VERSION, agent, state, labels: { env: SIM_ENV }, version: 'bench', startedAt: null, at: new Date().toISOString() } satisfies AgentStatus);
}

/** A fixed host: the hub stores and shows heartbeats, it does not read the facts. */
function heartbeatMessage(agent: string): string {
  const host = { hostname: agent, os: 'linux', kernel: 'sim', arch: 'x64', cpuLoadPercent: 1, loadAvg: [0, 0, 0], memTotalBytes: 1 << 30, memUsedBytes: 1 << 28, uptimeSeconds: 1 };
  return JSON.stringify({ v: SCHEMA_VERSION, agent, at: new Date().toISOString(), host } satisfies Heartbeat);
}

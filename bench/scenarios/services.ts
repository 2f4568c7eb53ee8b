/**
 * `services`: the services engine of a whole hub (startTestHub: in-process, embedded aedes,
 * signing on, SQLite store) with simulated agents: real MQTT clients, each logged in as its own
 * agent account, speaking the agents' protocol (retained status with a services offer and a last
 * will, a renewal every renewMs, the hub's signed lease grants verified with its key, a retained
 * state per copy). They run no processes: a copy "starts" when a verified grant lists it, so what
 * is timed is the engine, its store, the lease and the broker.
 * 1. agent loss: 100 services on 5 agents; one agent's connection is destroyed (its last will
 *    fires) and the time from then until each of its services is started by another agent is
 *    taken; the agent comes back and the next busiest one goes, until 100 moves are timed.
 *    Bounded below by the fence: the lost agent's last grant + leaseMs + stopTimeout + driftMs.
 * 2. placement rate: 1,000 services created (50 requests in flight) on 5 agents; from the first
 *    request to the last copy started.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { MqttClient } from 'mqtt';
import { requestEngine } from '../../src/cli/mqtt-request.js';
import { SERVICES_REQUEST, ServicesReply, servicesReplyTopic, agentServiceStateTopic, serviceLeaseTopic, serviceRenewTopic } from '../../src/shared/contract/services-engine-messages.js';
import { LeaseGrant, type AgentServiceState, type AgentServicesOffer, type LeaseRenewal } from '../../src/shared/contract/services-messages.js';
import { decode, SCHEMA_VERSION } from '../../src/shared/messages.js';
import { open } from '../../src/shared/signing/envelope.js';
import { loadVerifyKey, type VerifyKey } from '../../src/shared/signing/keys.js';
import { agentStatusTopic } from '../../src/shared/topics.js';
import { connectWhenKnown, userUrl } from '../../test/support/broker-users.js';
import { Cleanup } from '../../test/support/cleanup.js';
import { hubKeyFor } from '../../test/support/signer.js';
import { startTestHub } from '../../test/support/test-hub.js';
import { waitFor } from '../../test/support/wait.js';
import { progress } from '../support/processes.js';
import { percentile, round, type Figures, type Scenario } from '../scenario.js';

const AGENTS = 5;
const LOSS_SERVICES = 100;
const LOSS_SAMPLES = 100;
const RATE_SERVICES = 1000;
const IN_FLIGHT = 50;
/** What each simulated agent advertises as services.stopTimeout (the agents' default, 1 s). */
const STOP_TIMEOUT_MS = 1000;

/** One simulated agent: what a real agent says and does on MQTT for the services engine, without processes. */
class SimAgent {
  private client: MqttClient | undefined;
  private session = '';
  private seq = 0;
  private renewMs = 500;
  private timer: NodeJS.Timeout | undefined;
  private latest = { seq: 0, grantedAt: -Infinity };
  /** The copies it runs: name → generation and restart number. */
  readonly running = new Map<string, { generation: number; restarts: number }>();
  /** Called when a grant starts a copy here. */
  onStart: (name: string, generation: number, at: number) => void = () => undefined;

  constructor(
    readonly id: string,
    private readonly url: string,
    private readonly key: VerifyKey,
    private readonly maxWorkers: number,
  ) {}

  private status(state: 'online' | 'offline'): string {
    const services: AgentServicesOffer = { actions: { svc: { stopTimeoutMs: STOP_TIMEOUT_MS } }, maxWorkers: this.maxWorkers, running: this.running.size };
    return JSON.stringify({ v: SCHEMA_VERSION, agent: this.id, state, labels: {}, version: 'bench', startedAt: new Date().toISOString(), at: new Date().toISOString(), services });
  }

  async connect(): Promise<void> {
    this.session = randomBytes(8).toString('hex');
    this.seq = 0;
    this.latest = { seq: 0, grantedAt: -Infinity };
    this.running.clear();
    const client = await connectWhenKnown(this.url, { clientId: this.id, reconnectPeriod: 0, will: { topic: agentStatusTopic(this.id), payload: Buffer.from(this.status('offline')), retain: true, qos: 1 } });
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    this.client = client;
    client.on('message', (_topic, bytes) => this.granted(bytes));
    await client.subscribeAsync(serviceLeaseTopic(this.id), { qos: 1 });
    await client.publishAsync(agentStatusTopic(this.id), this.status('online'), { qos: 1, retain: true });
    this.renew();
  }

  /** As kill -9 does: the socket closes with no DISCONNECT, so the broker fires the will. */
  die(): void {
    clearTimeout(this.timer);
    this.client?.stream.destroy();
    this.client?.end(true);
    this.client = undefined;
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.client?.endAsync(true);
  }

  private renew(): void {
    const client = this.client;
    if (!client) return;
    const renewal: LeaseRenewal = { v: SCHEMA_VERSION, agent: this.id, session: this.session, seq: ++this.seq, running: Object.fromEntries([...this.running].map(([n, r]) => [n, r.generation])) };
    client.publish(serviceRenewTopic(this.id), JSON.stringify(renewal), { qos: 1 });
    this.timer = setTimeout(() => this.renew(), this.renewMs);
  }

  private granted(bytes: Buffer): void {
    const at = performance.now();
    const opened = open([this.key], bytes);
    if (!opened.ok) throw new Error(`${this.id}: a lease grant not signed by the hub: ${opened.detail}`);
    const d = decode(LeaseGrant, opened.payload);
    if (!d.ok) throw new Error(`${this.id}: a malformed lease grant: ${d.error}`);
    const grant = d.value;
    if (grant.session !== this.session) return;
    // The newest grant decides, by (seq, grantedAt), as the agent's lease holder has it.
    if (grant.seq < this.latest.seq || (grant.seq === this.latest.seq && grant.grantedAt <= this.latest.grantedAt)) return;
    this.latest = { seq: grant.seq, grantedAt: grant.grantedAt };
    this.renewMs = grant.renewMs;
    for (const [name, copy] of this.running) if (grant.services[name]?.generation !== copy.generation) {
      this.running.delete(name);
      this.report(name, copy, 'ended', 'stopped: not in the lease');
    }
    for (const [name, s] of Object.entries(grant.services)) {
      const had = this.running.get(name);
      if (had && had.generation === s.generation && had.restarts === s.restarts) continue;
      this.running.set(name, { generation: s.generation, restarts: s.restarts });
      this.report(name, s, 'running');
      this.onStart(name, s.generation, at);
    }
  }

  private report(name: string, copy: { generation: number; restarts: number }, state: AgentServiceState['state'], reason?: string): void {
    const msg: AgentServiceState = { v: SCHEMA_VERSION, agent: this.id, name, generation: copy.generation, restarts: copy.restarts, state, at: new Date().toISOString(), ...(reason !== undefined && { reason }) };
    this.client?.publish(agentServiceStateTopic(this.id, name), JSON.stringify(msg), { qos: 1, retain: true });
  }
}

type Fleet = { agents: SimAgent[]; add(names: readonly string[]): Promise<void> };

async function simFleet(cleanup: Cleanup, maxWorkers: number): Promise<Fleet> {
  const hub = await startTestHub(cleanup, 'aedes', { engines: { services: {} }, log: { level: 'error' } });
  const key = loadVerifyKey(hubKeyFor(hub.mqttUrl)!);
  const agents: SimAgent[] = [];
  for (let i = 1; i <= AGENTS; i++) {
    const id = `sim${i}`;
    const agent = new SimAgent(id, await userUrl(hub.mqttUrl, id, 'agent'), key, maxWorkers);
    cleanup.defer(() => agent.stop());
    await agent.connect();
    agents.push(agent);
  }
  const op = await connectWhenKnown(await userUrl(hub.mqttUrl, 'bench-op', 'operator'), { reconnectPeriod: 0 });
  cleanup.defer(() => op.endAsync(true));
  op.setMaxListeners(IN_FLIGHT * 2);
  const route = { topic: SERVICES_REQUEST, replyTopic: servicesReplyTopic, reply: ServicesReply, noAnswer: 'engines.services' };
  return {
    agents,
    async add(names) {
      for (let i = 0; i < names.length; i += IN_FLIGHT) {
        const replies = await Promise.all(names.slice(i, i + IN_FLIGHT).map((name) => requestEngine(op, route, { op: 'add', service: { name, action: 'svc', arg: '', selector: {} } }, 30)));
        const refused = replies.find((r) => !r.ok);
        if (refused) throw new Error(`services add refused: ${refused.error}`);
      }
    },
  };
}

const where = (agents: readonly SimAgent[]) => new Map(agents.flatMap((a) => [...a.running.keys()].map((n) => [n, a.id] as const)));

async function agentLoss(): Promise<Figures> {
  const cleanup = new Cleanup();
  try {
    const fleet = await simFleet(cleanup, LOSS_SERVICES);
    const names = Array.from({ length: LOSS_SERVICES }, (_, i) => `loss-${i}`);
    await fleet.add(names);
    await waitFor('every service running on a simulated agent', () => where(fleet.agents).size === LOSS_SERVICES, 60_000);
    progress(`services: ${LOSS_SERVICES} services on ${AGENTS} agents; losing agents until ${LOSS_SAMPLES} moves are timed`);
    const samples: number[] = [];
    while (samples.length < LOSS_SAMPLES) {
      const victim = [...fleet.agents].sort((a, b) => b.running.size - a.running.size)[0]!;
      const lost = new Set(victim.running.keys());
      const moved = new Map<string, number>();
      for (const a of fleet.agents) if (a !== victim) a.onStart = (name, _g, at) => void (lost.has(name) && !moved.has(name) && moved.set(name, at));
      const diedAt = performance.now();
      victim.die();
      await waitFor(`the ${lost.size} services of ${victim.id} started elsewhere`, () => moved.size === lost.size, 30_000);
      samples.push(...[...moved.values()].map((at) => at - diedAt));
      progress(`lost ${victim.id}: ${lost.size} services moved in ${round(Math.max(...moved.values()) - diedAt, 0)} ms`);
      await victim.connect();
    }
    return {
      [`agent loss → each service started elsewhere, p50 (ms, ${samples.length} moves)`]: round(percentile(samples, 50), 0),
      'agent loss → each service started elsewhere, p99 (ms)': round(percentile(samples, 99), 0),
      'agent loss → each service started elsewhere, max (ms)': round(Math.max(...samples), 0),
    };
  } finally {
    await cleanup.run();
  }
}

async function placementRate(): Promise<Figures> {
  const cleanup = new Cleanup();
  try {
    const fleet = await simFleet(cleanup, RATE_SERVICES);
    const names = Array.from({ length: RATE_SERVICES }, (_, i) => `rate-${i}`);
    progress(`services: creating ${RATE_SERVICES} services, ${IN_FLIGHT} requests in flight`);
    const t0 = performance.now();
    await fleet.add(names);
    const addedAt = performance.now();
    await waitFor('every service running on a simulated agent', () => where(fleet.agents).size === RATE_SERVICES, 120_000);
    const placedAt = performance.now();
    const spread = fleet.agents.map((a) => a.running.size).join(' / ');
    return {
      [`${RATE_SERVICES} services: created (s)`]: round((addedAt - t0) / 1000, 2),
      [`${RATE_SERVICES} services: first request → all started (s)`]: round((placedAt - t0) / 1000, 2),
      'placement rate (services/s)': round(RATE_SERVICES / ((placedAt - t0) / 1000), 0),
      'services per agent': spread,
    };
  } finally {
    await cleanup.run();
  }
}

export const servicesScenarios: Scenario[] = [
  { name: 'services agent loss', run: agentLoss },
  { name: 'services placement rate', run: placementRate },
];

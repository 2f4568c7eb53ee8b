import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { requestEngine } from '../../src/cli/mqtt-request.js';
import { SERVICES_REQUEST, servicesReplyTopic, ServicesReply, type ServiceView } from '../../src/shared/contract/services-engine-messages.js';
import { LeaseGrant } from '../../src/shared/contract/services-messages.js';
import { decode, SCHEMA_VERSION } from '../../src/shared/messages.js';
import { open } from '../../src/shared/signing/envelope.js';
import { loadVerifyKey, PRIVATE_KEY_FILE, publicKeyFileFor, type VerifyKey } from '../../src/shared/signing/keys.js';
import { agentStatusTopic } from '../../src/shared/topics.js';
import { userUrl } from '../support/broker-users.js';
import { authBrokerAt } from '../support/mosquitto.js';
import { Cleanup } from '../support/cleanup.js';
import { freePort } from '../support/ports.js';
import { startPostgres } from '../support/postgres.js';
import { startTestHub, watch, type BrokerKind, type TestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

/** The hub runs in this process: its monotonic epoch clock is ours too. */
const hubNow = (): number => performance.timeOrigin + performance.now();
const STOP_TIMEOUT_MS = 1000;
/** leaseMs + stopTimeout + driftMs with the defaults: a lost agent's copies are fenced this long after its last grant. */
const FENCE_MS = 1500 + STOP_TIMEOUT_MS + 200;

type Grant = LeaseGrant & { receivedAt: number };

/**
 * An agent as the hub sees one, speaking the services protocol over its own broker account: a
 * retained status with its services offer and an offline last will, a renewal every 500 ms, and
 * the state of each copy its latest lease lists (running as soon as it is granted, ended once a
 * lease leaves it out). It verifies every lease with the hub's public key.
 */
class FakeAgent {
  readonly grants: Grant[] = [];
  readonly unsigned: string[] = [];
  readonly session = randomBytes(8).toString('hex');
  private seq = 0;
  private renewing: NodeJS.Timeout | undefined;
  /** What runs here: name → generation/restarts of the copy. */
  readonly running = new Map<string, { generation: number; restarts: number }>();

  private constructor(
    readonly id: string,
    readonly client: MqttClient,
    private readonly key: VerifyKey,
  ) {}

  static async start(cleanup: Cleanup, hub: TestHub, url: string, id: string, offer: { maxWorkers: number; labels?: Record<string, string> }): Promise<FakeAgent> {
    const status = (state: 'online' | 'offline') =>
      JSON.stringify({ v: SCHEMA_VERSION, agent: id, state, labels: offer.labels ?? {}, version: 'test', startedAt: null, at: new Date().toISOString(), services: { actions: { work: { stopTimeoutMs: STOP_TIMEOUT_MS } }, maxWorkers: offer.maxWorkers, running: 0 } });
    // The broker reads a new account from the users file a moment after it is written.
    const client = await waitFor(`${id} logged in`, () =>
      mqtt.connectAsync(url, { reconnectPeriod: 0, will: { topic: agentStatusTopic(id), payload: Buffer.from(status('offline')), retain: true, qos: 1 } }).catch(() => undefined),
    );
    const agent = new FakeAgent(id, client, loadVerifyKey(publicKeyFileFor(join(hub.stateDir, PRIVATE_KEY_FILE))));
    cleanup.defer(() => agent.stop());
    client.on('message', (topic, payload) => agent.onLease(payload));
    await client.subscribeAsync(`pushfleet/agents/${id}/services/lease`, { qos: 1 });
    await client.publishAsync(agentStatusTopic(id), status('online'), { qos: 1, retain: true });
    agent.renew();
    agent.renewing = setInterval(() => agent.renew(), 500);
    return agent;
  }

  renew(): void {
    const running = Object.fromEntries([...this.running].map(([name, r]) => [name, r.generation]));
    this.publish(`pushfleet/agents/${this.id}/services/renew`, { v: SCHEMA_VERSION, agent: this.id, session: this.session, seq: ++this.seq, running });
  }

  report(name: string, generation: number, restarts: number, state: 'running' | 'ended', extra: Record<string, unknown> = {}): void {
    this.publish(`pushfleet/agents/${this.id}/services/${name}/state`, { v: SCHEMA_VERSION, agent: this.id, name, generation, restarts, state, at: new Date().toISOString(), ...extra }, true);
  }

  publish(topic: string, payload: object | string, retain = false): void {
    this.client.publish(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), { qos: 1, retain });
  }

  /** The services the latest lease lists. */
  get leased(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.grants.at(-1)?.services ?? {}).map(([name, s]) => [name, s.generation]));
  }

  /** Connected but silent: no more renewals (a hung agent, a one-way partition). */
  silence(): void {
    clearInterval(this.renewing);
  }

  /** Gone without a word: the broker sees the socket close and publishes the last will. */
  kill(): void {
    clearInterval(this.renewing);
    this.client.stream.destroy();
  }

  async stop(): Promise<void> {
    clearInterval(this.renewing);
    await this.client.endAsync(true);
  }

  private onLease(bytes: Buffer): void {
    const opened = open([this.key], bytes);
    if (!opened.ok) return void this.unsigned.push(bytes.toString());
    const d = decode(LeaseGrant, opened.payload);
    if (!d.ok) throw new Error(`malformed lease: ${d.error}`);
    const grant = d.value;
    if (grant.session !== this.session) throw new Error(`a lease for another session: ${grant.session}`);
    this.grants.push({ ...grant, receivedAt: hubNow() });
    for (const [name, s] of Object.entries(grant.services)) {
      const copy = this.running.get(name);
      if (copy?.generation === s.generation && copy.restarts === s.restarts) continue;
      this.running.set(name, { generation: s.generation, restarts: s.restarts });
      this.report(name, s.generation, s.restarts, 'running');
    }
    for (const [name, copy] of this.running) {
      if (grant.services[name]) continue;
      this.running.delete(name);
      this.report(name, copy.generation, copy.restarts, 'ended', { reason: 'stopped: not in the lease', signal: 'SIGTERM' });
    }
  }
}

async function servicesHub(cleanup: Cleanup, kind: BrokerKind, overrides: Record<string, unknown> = {}) {
  const hub = await startTestHub(cleanup, kind, overrides);
  const external = authBrokerAt(hub.mqttUrl);
  const account = async (name: string, role: 'agent' | 'operator') => (external ? (await external.user(name, role)).url : await userUrl(hub.mqttUrl, name, role));
  const opUrl = await account('op', 'operator');
  const op = await waitFor('operator logged in', () => mqtt.connectAsync(opUrl, { reconnectPeriod: 0 }).catch(() => undefined));
  cleanup.defer(() => op.endAsync(true));
  const ask = (req: object) => requestEngine(op, { topic: SERVICES_REQUEST, replyTopic: servicesReplyTopic, reply: ServicesReply, noAnswer: 'is engines.services enabled?' }, req, 10);
  const agent = async (id: string, offer: { maxWorkers: number; labels?: Record<string, string> }) => FakeAgent.start(cleanup, hub, await account(id, 'agent'), id, offer);
  const show = async (name: string): Promise<ServiceView> => (await ask({ op: 'show', name })).service!;
  const running = (name: string, on: string) => waitFor(`${name} running on ${on}`, async () => {
    const s = await show(name);
    return s.status === 'running' && s.current?.agent === on && s;
  });
  return { hub, opUrl, ask, agent, show, running, account };
}

/** Service web running on srv-a, and srv-b leased with room for it. */
async function webOnAWithB(cleanup: Cleanup) {
  const fleet = await servicesHub(cleanup, 'aedes');
  const a = await fleet.agent('srv-a', { maxWorkers: 1 });
  await fleet.ask({ op: 'add', service: { name: 'web', action: 'work' } });
  await fleet.running('web', 'srv-a');
  const b = await fleet.agent('srv-b', { maxWorkers: 1 });
  await waitFor('b leased', () => b.grants.length > 0);
  return { ...fleet, a, b };
}

describe('services engine over a real broker, agents played by the test', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('places on the least-loaded agent, queues over capacity, places the queue when capacity appears, and leases reach only their agent, signed', async () => {
    const { hub, ask, agent, running, show, account } = await servicesHub(cleanup, 'aedes');
    const a = await agent('srv-a', { maxWorkers: 2 });
    const b = await agent('srv-b', { maxWorkers: 1, labels: { zone: 'east' } });
    await waitFor('both agents leased', () => a.grants.length > 0 && b.grants.length > 0);
    // Another agent listening on a's lease topic hears nothing: the broker keeps it to a.
    const spyUrl = await account('srv-spy', 'agent');
    const spy = await waitFor('spy logged in', () => mqtt.connectAsync(spyUrl, { reconnectPeriod: 0 }).catch(() => undefined));
    cleanup.defer(() => spy.endAsync(true));
    const overheard: string[] = [];
    spy.on('message', (topic) => overheard.push(topic));
    await spy.subscribeAsync('pushfleet/agents/srv-a/services/lease', { qos: 1 }).catch(() => undefined);
    const placements = await watch(cleanup, hub.mqttUrl, 'pushfleet/services/+/placement');

    for (const name of ['one', 'two', 'three', 'four']) {
      const r = await ask({ op: 'add', service: { name, action: 'work', arg: `arg-${name}` } });
      expect(r, name).toMatchObject({ ok: true, service: { name } });
    }
    expect((await running('one', 'srv-a')).generation).toBe(1);
    await running('two', 'srv-b');
    await running('three', 'srv-a');
    const four = await show('four');
    expect(four).toMatchObject({ status: 'queued', reason: expect.stringMatching(/every agent that fits \(srv-a, srv-b\) runs its maxWorkers/) });
    // A selector nobody matches waits too, and says why.
    await ask({ op: 'add', service: { name: 'five', action: 'work', selector: { zone: 'west' } } });
    expect(await show('five')).toMatchObject({ status: 'queued', reason: 'no live agent offering work has the labels zone=west' });

    expect(a.leased).toEqual({ one: 1, three: 1 });
    expect(b.leased).toEqual({ two: 1 });
    const last = a.grants.at(-1)!;
    expect(last).toMatchObject({ leaseMs: 1500, renewMs: 500, services: { one: { generation: 1, restarts: 0, action: 'work', arg: 'arg-one' } } });
    expect(last.grantedAt).toBeGreaterThan(0);
    expect(a.unsigned).toEqual([]);
    expect(overheard).toEqual([]);
    // The retained placement is signed too.
    const retained = placements.messages.find((m) => m.topic === 'pushfleet/services/one/placement')!;
    const opened = open([loadVerifyKey(publicKeyFileFor(join(hub.stateDir, PRIVATE_KEY_FILE)))], Buffer.from(retained.payload));
    expect(opened.ok && JSON.parse(opened.payload.toString())).toEqual({ v: 1, name: 'one', generation: 1, agent: 'srv-a' });

    // Capacity appears: the queue is placed in creation order.
    const c = await agent('srv-c', { maxWorkers: 1, labels: { zone: 'west' } });
    await running('four', 'srv-c');
    expect(c.leased).toEqual({ four: 1 });
    expect((await show('five')).status).toBe('queued');
    const servers = (await ask({ op: 'servers' })).servers!;
    expect(servers.items.map((s) => [s.agent, s.used, s.maxWorkers, s.services])).toEqual([
      ['srv-a', 2, 2, ['one', 'three']],
      ['srv-b', 1, 1, ['two']],
      ['srv-c', 1, 1, ['four']],
    ]);
    const page = (await ask({ op: 'ls', page: { offset: 1, limit: 2 } })).services!;
    expect([page.total, page.items.map((s) => s.name)]).toEqual([5, ['two', 'three']]);
  });

  it('cancels a running service (stopped by its lease) and a queued one, and a name created again goes on counting generations', async () => {
    const { hub, ask, agent, running, show } = await servicesHub(cleanup, 'aedes');
    const a = await agent('srv-a', { maxWorkers: 1 });
    await ask({ op: 'add', service: { name: 'web', action: 'work' } });
    await ask({ op: 'add', service: { name: 'later', action: 'work' } });
    await running('web', 'srv-a');
    const states = await watch(cleanup, hub.mqttUrl, 'pushfleet/services/+/state');
    await waitFor('the retained state of web', () => states.messages.some((m) => m.topic === 'pushfleet/services/web/state' && m.retain && JSON.parse(m.payload).status === 'running'));

    expect((await ask({ op: 'rm', name: 'later' })).service).toMatchObject({ status: 'cancelled' });
    expect((await ask({ op: 'rm', name: 'web' })).service).toMatchObject({ status: 'stopping' });
    // The lease leaves it out; the agent stops it and says so; then it is gone, its retained state cleared.
    await waitFor('web left the lease', () => a.grants.length > 0 && a.leased.web === undefined);
    await waitFor('web cancelled', async () => (await ask({ op: 'show', name: 'web' })).code === 'not-found');
    await waitFor('web state cleared', () => states.messages.some((m) => m.topic === 'pushfleet/services/web/state' && m.payload === ''));
    expect((await ask({ op: 'ls' })).services!.items).toEqual([]);

    await ask({ op: 'add', service: { name: 'web', action: 'work' } });
    expect((await running('web', 'srv-a')).generation).toBe(2);
    expect(a.leased).toEqual({ web: 2 });
    expect((await show('web')).history).toEqual([]);
  });

  it("moves a lost agent's service elsewhere only after its fence: last grant + lease + stop timeout + drift", async () => {
    const { a, b, running } = await webOnAWithB(cleanup);
    a.kill();
    const killedAt = hubNow();
    const moved = await waitFor('web leased to b', () => b.grants.find((g) => g.services.web));
    const lastToA = a.grants.at(-1)!;
    expect(moved.services.web!.generation).toBe(2);
    expect(moved.grantedAt).toBeGreaterThanOrEqual(lastToA.grantedAt + FENCE_MS);
    // Bounded: the will fires at once and the fence runs from a's last grant, before the kill
    // (the margin is for a loaded machine's timers, not a speed claim).
    expect(moved.grantedAt - killedAt).toBeLessThan(FENCE_MS + 5000);
    const web = await running('web', 'srv-b');
    expect(web.history[0]).toMatchObject({ agent: 'srv-a', generation: 1, endReason: 'agent lost (offline)' });
  });

  it('treats an agent that stops renewing as lost, and restarts an exited copy on its agent with the next restart number', async () => {
    const { a, b, running } = await webOnAWithB(cleanup);
    a.report('web', 1, 0, 'ended', { code: 1 });
    const restarted = await waitFor('web restarted on a', () => a.grants.find((g) => g.services.web?.restarts === 1));
    expect(restarted.services.web!.generation).toBe(1);
    expect(b.leased).toEqual({});

    a.silence();
    const moved = await waitFor('web leased to b', () => b.grants.find((g) => g.services.web));
    expect(moved.services.web!.generation).toBe(2);
    expect(moved.grantedAt).toBeGreaterThanOrEqual(a.grants.at(-1)!.grantedAt + FENCE_MS);
    const web = await running('web', 'srv-b');
    expect(web.history[0]).toMatchObject({ agent: 'srv-a', generation: 1, restarts: 1, endReason: 'agent lost (heartbeats missed)' });
  });

  it.each(['sqlite', 'postgres'] as const)('keeps its services over a hub restart and places nothing twice (%s)', async (storeKind) => {
    let store: Record<string, unknown> = {};
    let pgUrl: string | undefined;
    if (storeKind === 'postgres') {
      const server = await startPostgres();
      cleanup.defer(() => server.stop());
      pgUrl = await server.database();
      store = { engines: { services: { postgresUrl: pgUrl } } };
    }
    const first = await servicesHub(cleanup, 'mosquitto', store);
    const a = await first.agent('srv-a', { maxWorkers: 2 });
    const b = await first.agent('srv-b', { maxWorkers: 2 });
    for (const name of ['one', 'two', 'three']) await first.ask({ op: 'add', service: { name, action: 'work' } });
    await first.running('one', 'srv-a');
    await first.running('two', 'srv-b');
    await first.running('three', 'srv-a');
    await first.hub.stop();
    const grantsBefore = a.grants.length + b.grants.length;

    const again = await servicesHub(cleanup, 'aedes', { ...store, stateDir: first.hub.stateDir, mqtt: { url: first.hub.broker!.url } });
    // Renewals are answered again, with what each agent held, and nothing moves past the restart fence.
    await waitFor('leases again', () => a.grants.length + b.grants.length > grantsBefore + 4);
    await new Promise((r) => setTimeout(r, FENCE_MS + 500));
    const services = (await again.ask({ op: 'ls' })).services!.items;
    expect(services.map((s) => [s.name, s.status, s.generation, s.current?.agent])).toEqual([
      ['one', 'running', 1, 'srv-a'],
      ['two', 'running', 1, 'srv-b'],
      ['three', 'running', 1, 'srv-a'],
    ]);
    expect([a.leased, b.leased]).toEqual([{ one: 1, three: 1 }, { two: 1 }]);
    const generations = [...a.grants, ...b.grants].flatMap((g) => Object.values(g.services).map((s) => s.generation));
    expect(new Set(generations)).toEqual(new Set([1]));
    if (pgUrl) {
      // Kept in PostgreSQL, not in the hub's SQLite file.
      const client = new pg.Client({ connectionString: pgUrl });
      await client.connect();
      const rows = (await client.query('SELECT name FROM services ORDER BY seq')).rows as { name: string }[];
      await client.end();
      expect(rows.map((r) => r.name)).toEqual(['one', 'two', 'three']);
    }
  });

  it('ignores malformed and forged agent messages: nothing changes', async () => {
    const { ask, agent, running } = await servicesHub(cleanup, 'aedes');
    const a = await agent('srv-a', { maxWorkers: 1 });
    const b = await agent('srv-b', { maxWorkers: 1 });
    await ask({ op: 'add', service: { name: 'web', action: 'work' } });
    await running('web', 'srv-a');
    const before = (await ask({ op: 'ls' })).services!.items;
    const leasesToB = b.grants.length;

    // b, on its own topics: bad JSON, a renewal and a state naming a, a state of a's copy as its own.
    b.publish('pushfleet/agents/srv-b/services/renew', '{not json');
    b.publish('pushfleet/agents/srv-b/services/renew', { v: 1, agent: 'srv-a', session: b.session, seq: 99, running: {} });
    b.publish('pushfleet/agents/srv-b/services/web/state', { v: 1, agent: 'srv-a', name: 'web', generation: 1, restarts: 0, state: 'ended', at: new Date().toISOString() });
    b.report('web', 1, 0, 'ended', { reason: 'forged' });
    b.publish('pushfleet/agents/srv-b/services/web/state', '[]');
    b.publish('pushfleet/agents/srv-b/status', '{"v":1');
    b.publish('pushfleet/agents/srv-b/services/web/output', { v: 1, agent: 'srv-b', name: 'web', generation: 1, restarts: 0, at: new Date().toISOString(), output: 'not mine' });
    // On a's topics the broker refuses b.
    b.publish('pushfleet/agents/srv-a/services/web/state', { v: 1, agent: 'srv-a', name: 'web', generation: 1, restarts: 0, state: 'ended', at: new Date().toISOString() });
    b.publish('pushfleet/agents/srv-a/status', { v: 1, agent: 'srv-a', state: 'offline', labels: {}, version: 'x', startedAt: null, at: new Date().toISOString() });
    await new Promise((r) => setTimeout(r, 1500));

    expect((await ask({ op: 'ls' })).services!.items).toEqual(before);
    expect(a.leased).toEqual({ web: 1 });
    expect(b.grants.slice(leasesToB).every((g) => Object.keys(g.services).length === 0)).toBe(true);
    expect((await ask({ op: 'logs', name: 'web' })).code).toBe('not-found');
    // a's own output is kept for `services logs`.
    a.publish('pushfleet/agents/srv-a/services/web/output', { v: 1, agent: 'srv-a', name: 'web', generation: 1, restarts: 0, at: new Date().toISOString(), output: 'hello\n' }, true);
    const logs = await waitFor('logs', async () => (await ask({ op: 'logs', name: 'web' })).logs);
    expect(logs).toMatchObject({ name: 'web', agent: 'srv-a', generation: 1, output: 'hello\n' });
  });

  // On mosquitto: the embedded broker's door already refuses a malformed request, so only an external broker lets one reach the engine.
  it('answers refused requests with their codes (mosquitto)', async () => {
    const { ask, agent, running } = await servicesHub(cleanup, 'mosquitto');
    await agent('srv-a', { maxWorkers: 1 });
    await ask({ op: 'add', service: { name: 'web', action: 'work' } });
    await running('web', 'srv-a');
    const refused = async (req: object) => {
      const r = await ask(req);
      return [r.ok, r.code, r.error];
    };
    expect(await refused({ op: 'add', service: { name: 'web', action: 'work' } })).toEqual([false, 'exists', 'service web exists (running); remove it first: pushfleet services rm web']);
    expect(await refused({ op: 'rm', name: 'nope' })).toEqual([false, 'not-found', 'no service nope: see pushfleet services ls']);
    expect(await refused({ op: 'show', name: 'nope' })).toEqual([false, 'not-found', 'no service nope: see pushfleet services ls']);
    expect(await refused({ op: 'logs', name: 'web', generation: 7 })).toEqual([false, 'not-found', 'service web has no placement of generation 7 (see pushfleet services show web)']);
    const [ok, code, error] = await refused({ op: 'add', service: { name: 'Bad_Name', action: 'work' } });
    expect([ok, code]).toEqual([false, 'invalid']);
    expect(error).toMatch(/service\.name/);
    expect((await ask({ op: 'ls', status: 'running' })).services!.items.map((s) => s.name)).toEqual(['web']);
  });

  it('does not start when engines.services.postgresUrl names a database it cannot reach, and says so in one line', async () => {
    const port = await freePort();
    const started = startTestHub(cleanup, 'aedes', { engines: { services: { postgresUrl: `postgres://pushfleet:secret-pw@127.0.0.1:${port}/fleet` } } });
    const err = (await started.then(() => undefined, (e: unknown) => e)) as Error;
    expect(err.message).toMatch(new RegExp(`^the services store cannot use PostgreSQL at postgres://pushfleet:\\*+@127\\.0\\.0\\.1:${port}/fleet \\(engines\\.services\\.postgresUrl\\): .*ECONNREFUSED`));
    expect(err.message).not.toContain('secret-pw');
    expect(err.message).not.toContain('\n');
  });
});


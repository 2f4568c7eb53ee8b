import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ServicesConfig } from '../../src/hub/engines/services/config.js';
import type { Service, ServiceStore } from '../../src/hub/engines/services/model.js';
import { ServicesEngine } from '../../src/hub/engines/services/services-engine.js';
import { SqliteServiceStore } from '../../src/hub/engines/services/sqlite-store.js';
import { createLogger } from '../../src/shared/logger.js';
import { ManualClock } from '../support/manual-clock.js';

const T0 = 1_000_000;

/** The real SQLite store, that fails every write while `failing` is set (a full disk, a database gone). */
class FlakyStore implements ServiceStore {
  failing = false;
  constructor(readonly inner: SqliteServiceStore) {}
  load = () => this.inner.load();
  create = (s: Service) => this.gate(() => this.inner.create(s));
  save = (s: Service) => this.gate(() => this.inner.save(s));
  remove = (name: string) => this.gate(() => this.inner.remove(name));
  close = () => this.inner.close();
  private gate<T>(op: () => Promise<T>): Promise<T> {
    return this.failing ? Promise.reject(new Error('SQLITE_FULL: database or disk is full')) : op();
  }
}

const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

/** An engine on a fake publisher, a manual clock and a real SQLite store, with agents a and b offering `work`. */
async function engine() {
  const db = new Database(':memory:');
  const store = new FlakyStore(new SqliteServiceStore(db));
  const clock = new ManualClock(T0);
  const published: { topic: string; payload: string }[] = [];
  const ctx = { publisher: { publish: async (topic: string, payload: string) => void published.push({ topic, payload }) }, db, clock, log: createLogger('test', 'silent') };
  const e = new ServicesEngine(ctx, ServicesConfig.parse({}), { store, now: clock.now });
  await e.start();
  const send = (topic: string, payload: object) => e.handle(topic, Buffer.from(JSON.stringify(payload)));
  const seq: Record<string, number> = {};
  const renew = (agent: string, running: Record<string, number> = {}) => send(`pushfleet/agents/${agent}/services/renew`, { v: 1, agent, session: `${agent}0000000000000000`.slice(0, 16), seq: (seq[agent] = (seq[agent] ?? 0) + 1), running });
  const up = (agent: string, state: 'online' | 'offline' = 'online') =>
    send(`pushfleet/agents/${agent}/status`, { v: 1, agent, state, labels: {}, version: 'x', startedAt: null, at: new Date(0).toISOString(), services: { actions: { work: { stopTimeoutMs: 1000 } }, maxWorkers: 2, running: 0 } });
  const report = (agent: string, name: string, generation: number, state: 'running' | 'ended') => send(`pushfleet/agents/${agent}/services/${name}/state`, { v: 1, agent, name, generation, restarts: 0, state, at: new Date(0).toISOString() });
  for (const agent of ['a', 'b']) {
    up(agent);
    renew(agent);
  }
  await settle();
  const leases = (agent: string) => published.filter((p) => p.topic === `pushfleet/agents/${agent}/services/lease`).map((p) => JSON.parse(p.payload) as { seq: number; services: Record<string, { generation: number }> });
  return { e, store, db, clock, published, renew, up, report, leases, stop: () => e.stop().then(() => void db.close()) };
}

describe('ServicesEngine: durable intent before action', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  it('counts its services per status, for /metrics', async () => {
    const f = await engine();
    stop = f.stop;
    await f.e.add({ name: 'web', action: 'work', arg: '', selector: {} }, 'test');
    await f.e.add({ name: 'db', action: 'work', arg: '', selector: { zone: 'nowhere' } }, 'test');
    expect(f.e.statusCounts()).toEqual({ placed: 1, queued: 1 });
  });

  it('publishes nothing after a save that fails, answers requests "unavailable", and catches up once the store works', async () => {
    const f = await engine();
    stop = f.stop;
    expect(await f.e.add({ name: 'web', action: 'work', arg: '', selector: {} }, 'test')).toMatchObject({ status: 'placed', current: { agent: 'a', generation: 1 } });
    expect(f.leases('a').at(-1)!.services).toEqual({ web: { generation: 1, restarts: 0, action: 'work', arg: '' } });

    f.store.failing = true;
    const before = f.published.length;
    f.report('a', 'web', 1, 'running');
    f.renew('a', { web: 1 });
    await settle();
    await expect(f.e.remove('web', 'test')).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(/^the services store failed \(SQLITE_FULL: database or disk is full\)/) });
    await expect(f.e.add({ name: 'db', action: 'work', arg: '', selector: {} }, 'test')).rejects.toMatchObject({ code: 'unavailable' });
    // Retried with backoff, and meanwhile no lease: the agent's copy lapses with its lease.
    f.clock.advance(3000);
    await settle();
    expect(f.published.slice(before)).toEqual([]);
    expect(await f.store.inner.load()).toMatchObject([{ name: 'web', status: 'placed' }]);

    f.store.failing = false;
    f.clock.advance(5000);
    await settle();
    const after = f.published.slice(before).map((p) => p.topic);
    // The save first (its view), then the renewal's lease.
    expect(after).toEqual(['pushfleet/services/web/state', 'pushfleet/agents/a/services/lease']);
    expect(await f.store.inner.load()).toMatchObject([{ name: 'web', status: 'running' }]);
    expect(await f.e.remove('web', 'test')).toMatchObject({ status: 'stopping' });
  });

  it('keeps a cancelled service stored while a copy of it may still run, then removes it; re-created meanwhile, it waits for that copy', async () => {
    const f = await engine();
    stop = f.stop;
    await f.e.add({ name: 'web', action: 'work', arg: '', selector: {} }, 'test');
    f.up('a', 'offline');
    await settle();
    expect(await f.e.show('web')).toMatchObject({ status: 'queued', reason: expect.stringMatching(/^waiting until .* for its copy on a to be stopped \(agent lost \(offline\)\)$/) });
    expect(await f.e.remove('web', 'test')).toMatchObject({ status: 'cancelled' });
    // Stored still, with the fence: a hub restarted now would wait for it too.
    expect(await f.store.inner.load()).toMatchObject([{ name: 'web', status: 'cancelled', history: [{ agent: 'a', generation: 1, safeAt: T0 + 2700 }] }]);

    expect(await f.e.add({ name: 'web', action: 'work', arg: '', selector: {} }, 'test')).toMatchObject({ status: 'queued', generation: 1 });
    f.clock.advance(2000);
    f.renew('b');
    await settle();
    expect((await f.e.show('web')).status).toBe('queued');
    f.clock.advance(800);
    await settle();
    expect(await f.e.show('web')).toMatchObject({ status: 'placed', current: { agent: 'b', generation: 2 } });
    expect(f.leases('b').at(-1)!.services).toMatchObject({ web: { generation: 2 } });

    // Cancelled with nothing left running: removed at once, its generation kept as the name's fence.
    f.report('b', 'web', 2, 'running');
    await f.e.remove('web', 'test');
    f.report('b', 'web', 2, 'ended');
    await settle();
    expect(await f.store.inner.load()).toEqual([]);
    expect(await f.e.add({ name: 'web', action: 'work', arg: '', selector: {} }, 'test')).toMatchObject({ current: { agent: 'b', generation: 3 } });
  });
});

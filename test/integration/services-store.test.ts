import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Placement, Service, ServiceStore } from '../../src/hub/engines/services/model.js';
import { PostgresServiceStore, ServiceStoreUnavailable } from '../../src/hub/engines/services/postgres-store.js';
import { DEFAULT_HISTORY, GenerationTakenError, ServiceExistsError, ServiceMissingError, StaleGenerationError } from '../../src/hub/engines/services/sql-store.js';
import { SqliteServiceStore } from '../../src/hub/engines/services/sqlite-store.js';
import { openStateDb } from '../../src/hub/state-db.js';
import { Cleanup } from '../support/cleanup.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { waitFor } from '../support/wait.js';

type Options = { historyLimit?: number };
/** Where one test's state lives (a state dir, a database); stores can be opened on it again and again. */
type Place = { open(opts?: Options): Promise<ServiceStore> };
type Kind = { name: string; setup(): Promise<void>; teardown(): Promise<void>; place(cleanup: Cleanup): Promise<Place> };

let server: PostgresServer | undefined;

/** A store closed at cleanup unless the test closed it; closing also ends what the test opened under it. */
function tracked(cleanup: Cleanup, store: ServiceStore, after: () => void = () => undefined): ServiceStore {
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await store.close();
    after();
  };
  cleanup.defer(close);
  return { load: () => store.load(), create: (s) => store.create(s), save: (s) => store.save(s), remove: (n) => store.remove(n), close };
}

const KINDS: Kind[] = [
  {
    name: 'SQLite',
    setup: async () => undefined,
    teardown: async () => undefined,
    place: async (cleanup) => {
      const dir = cleanup.tempDir('pushfleet-services-');
      return {
        open: async (opts) => {
          const db = openStateDb(dir);
          return tracked(cleanup, new SqliteServiceStore(db, opts), () => db.close());
        },
      };
    },
  },
  {
    name: 'PostgreSQL',
    setup: async () => {
      server = await startPostgres();
    },
    teardown: async () => {
      await server?.stop();
      server = undefined;
    },
    place: async (cleanup) => {
      const url = await server!.database();
      return { open: async (opts) => tracked(cleanup, await PostgresServiceStore.open(url, opts)) };
    },
  },
];

const T0 = 1_764_000_000_000;
const service = (name: string, over: Partial<Service> = {}): Service => ({
  name,
  action: 'worker',
  arg: 'queue=emails',
  selector: { zone: 'eu', disk: 'ssd' },
  createdAt: T0,
  seq: 1,
  status: 'queued',
  generation: 0,
  history: [],
  ...over,
});
const placement = (generation: number, over: Partial<Placement> = {}): Placement => ({ agent: `agent-${generation}`, generation, placedAt: T0 + generation * 1000, restarts: 0, stopTimeoutMs: 1000, exits: [], ...over });
/** The service at generation g: running there, the earlier placements ended, newest first. */
const placedAt = (s: Service, g: number): Service => ({
  ...s,
  status: 'running',
  generation: g,
  current: placement(g, { runningAt: T0 + g * 1000 + 5 }),
  history: Array.from({ length: g - 1 }, (_, i) => placement(g - 1 - i, { endedAt: T0 + (g - i) * 1000, endReason: 'agent lost', restarts: i % 3, exits: [T0 + i], ...(i === 0 && { safeAt: T0 + g * 1000 + 2700 }) })),
});
/** As loaded back: the newest DEFAULT_HISTORY placements. */
const kept = (s: Service): Service => ({ ...s, history: s.history.slice(0, DEFAULT_HISTORY) });

describe.each(KINDS)('services store on $name', (kind) => {
  let cleanup: Cleanup;
  beforeAll(() => kind.setup());
  afterAll(() => kind.teardown());
  afterEach(async () => {
    await cleanup.run();
  });
  const place = () => kind.place((cleanup = new Cleanup()));

  it('creates, loads, saves and removes services whole, in creation order', async () => {
    const store = await (await place()).open();
    const b = service('beta', { seq: 2, arg: undefined, selector: {} });
    const a = service('alpha', { seq: 1 });
    expect(await store.create(b)).toEqual({ ...b });
    await store.create(a);
    expect(await store.load()).toEqual([a, b]);
    expect((await store.load())[1]).not.toHaveProperty('arg');

    const placed = placedAt(a, 3);
    await store.save(placed);
    expect(await store.load()).toEqual([placed, b]);
    const ended: Service = { ...placed, status: 'queued', current: undefined, history: [{ ...placed.current!, endedAt: T0 + 9000, endReason: 'crash loop' }, ...placed.history] };
    delete ended.current;
    await store.save(ended);
    expect(await store.load()).toEqual([ended, b]);

    await store.remove('alpha');
    await store.remove('alpha');
    expect(await store.load()).toEqual([b]);
  });

  it('refuses a second service of the same name with a clear error, and takes a retried create as done', async () => {
    const store = await (await place()).open();
    const first = service('mailer');
    await store.create(first);
    const other = service('mailer', { action: 'other', seq: 2 });
    const refused = store.create(other);
    await expect(refused).rejects.toBeInstanceOf(ServiceExistsError);
    await expect(refused).rejects.toThrow('a service named mailer exists already; remove it first or choose another name');
    // A create whose reply was lost is retried with the same service: it resolves with what is stored.
    await store.save(placedAt(first, 1));
    expect(await store.create(first)).toEqual(placedAt(first, 1));
    expect(await store.load()).toEqual([placedAt(first, 1)]);
  });

  it('lets exactly one of two hubs creating the same name at once succeed', async () => {
    const here = await place();
    const [one, two] = [await here.open(), await here.open()];
    for (let round = 0; round < 5; round++) {
      const name = `race-${round}`;
      const outcomes = await Promise.allSettled([one.create(service(name, { action: 'one' })), two.create(service(name, { action: 'two' }))]);
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      const refused = outcomes.find((o) => o.status === 'rejected');
      expect(refused?.reason).toBeInstanceOf(ServiceExistsError);
    }
    expect((await one.load()).map((s) => s.name)).toEqual(['race-0', 'race-1', 'race-2', 'race-3', 'race-4']);
  });

  it('never lets a generation go back: an older save is refused, a removed name restarts above its fence', async () => {
    const store = await (await place()).open();
    const s = service('fenced');
    await store.create(s);
    await store.save(placedAt(s, 3));
    const stale = store.save(placedAt(s, 2));
    await expect(stale).rejects.toBeInstanceOf(StaleGenerationError);
    await expect(stale).rejects.toThrow('service fenced: refused to save generation 2 over the stored generation 3');
    expect(await store.load()).toEqual([placedAt(s, 3)]);
    // The same generation carries newer state of the same placement.
    const restarting: Service = { ...placedAt(s, 3), status: 'restarting', current: placement(3, { restarts: 1 }) };
    await store.save(restarting);
    expect(await store.load()).toEqual([restarting]);

    await expect(store.save(service('ghost', { generation: 1 }))).rejects.toBeInstanceOf(ServiceMissingError);
    await store.remove('fenced');
    await expect(store.save(placedAt(s, 4))).rejects.toThrow('no service named fenced');
    // Agents may still know generation 3 of the old copy: the new service must place above it.
    const again = await store.create(service('fenced', { seq: 7 }));
    expect(again.generation).toBe(3);
    await expect(store.save(placedAt(again, 2))).rejects.toBeInstanceOf(StaleGenerationError);
    await store.save(placedAt(again, 4));
    expect((await store.load())[0]!.generation).toBe(4);
  });

  it('gives one generation to one agent only: two hubs placing the same generation at once, one is refused', async () => {
    const here = await place();
    const [one, two] = [await here.open(), await here.open()];
    const s = service('contested');
    await one.create(s);
    const on = (agent: string): Service => ({ ...s, status: 'placed', generation: 1, current: placement(1, { agent }) });
    const outcomes = await Promise.allSettled([one.save(on('agent-x')), two.save(on('agent-y'))]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(GenerationTakenError);
    const winner = (await one.load())[0]!.current!.agent;
    expect(String(refused.reason)).toContain(`service contested: generation 1 is placed on ${winner} already; a new placement needs a higher generation`);
    // The winner's placement goes on at that generation; clearing it (agent lost) keeps the generation taken.
    await one.save({ ...on(winner), status: 'running', current: placement(1, { agent: winner, runningAt: T0 }) });
    await one.save({ ...s, status: 'queued', generation: 1, history: [placement(1, { agent: winner, endedAt: T0 + 1, endReason: 'agent lost' })] });
    await one.save({ ...s, status: 'queued', generation: 1 });
    await expect(two.save(on(winner === 'agent-x' ? 'agent-y' : 'agent-x'))).rejects.toBeInstanceOf(GenerationTakenError);
    await two.save({ ...s, status: 'placed', generation: 2, current: placement(2, { agent: 'agent-y' }) });
    expect((await one.load())[0]!.current).toEqual(placement(2, { agent: 'agent-y' }));
  });

  it('refuses a service whose placements contradict its generation', async () => {
    const store = await (await place()).open();
    await store.create(service('odd'));
    await expect(store.save({ ...service('odd', { generation: 1 }), current: placement(2) })).rejects.toThrow('service odd: a placement has generation 2, above the service\'s 1');
    await expect(store.save({ ...service('odd', { generation: 2 }), current: placement(2), history: [placement(2)] })).rejects.toThrow('service odd: two placements share a generation');
    expect(await store.load()).toEqual([service('odd')]);
  });

  it('keeps the newest placements of each service only, up to its bound', async () => {
    const store = await (await place()).open({ historyLimit: 5 });
    const s = service('bounded');
    await store.create(s);
    for (let g = 1; g <= 12; g++) await store.save(placedAt(s, g));
    const [loaded] = await store.load();
    expect(loaded!.history.map((p) => p.generation)).toEqual([11, 10, 9, 8, 7]);
    expect(loaded).toEqual({ ...placedAt(s, 12), history: placedAt(s, 12).history.slice(0, 5) });
    // Given out of order, the newest are still the ones kept.
    await store.save({ ...placedAt(s, 12), history: [...placedAt(s, 12).history].reverse() });
    expect((await store.load())[0]!.history.map((p) => p.generation)).toEqual([11, 10, 9, 8, 7]);
  });

  it('settles concurrent saves from two stores on the highest generation, each save whole', async () => {
    const here = await place();
    const [one, two] = [await here.open(), await here.open()];
    const s = service('contended');
    await one.create(s);
    const others = Array.from({ length: 10 }, (_, i) => service(`other-${i}`, { seq: 10 + i }));
    await Promise.all(others.map((o) => two.create(o)));
    const generations = Array.from({ length: 40 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
    const outcomes = await Promise.allSettled([
      ...generations.map((g, i) => (i % 2 ? one : two).save(placedAt(s, g))),
      ...others.map((o, i) => (i % 2 ? two : one).save(placedAt(o, 2))),
    ]);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(StaleGenerationError);
    expect(outcomes.filter((o) => o.status === 'fulfilled').length).toBeGreaterThan(others.length);
    const loaded = await two.load();
    expect(loaded[0]).toEqual(kept(placedAt(s, 40)));
    expect(loaded.slice(1)).toEqual(others.map((o) => placedAt(o, 2)));
  });

  it('shows a store opened again after close everything the first one wrote', async () => {
    const here = await place();
    const first = await here.open();
    const a = service('kept-a');
    const b = service('kept-b', { seq: 2 });
    await first.create(a);
    await first.create(b);
    await first.save(placedAt(a, 5));
    await first.remove('kept-b');
    await first.close();
    await expect(first.load()).rejects.toThrow();
    const second = await here.open();
    expect(await second.load()).toEqual([placedAt(a, 5)]);
    expect((await second.create(b)).generation).toBe(0);
    await second.remove('kept-a');
    expect((await second.create(a)).generation).toBe(5);
  });
});

describe('services store on PostgreSQL, when the server fails', () => {
  let pgServer: PostgresServer;
  const cleanup = new Cleanup();
  beforeAll(async () => {
    pgServer = await startPostgres();
  });
  afterAll(async () => {
    await cleanup.run();
    await pgServer.stop();
  });

  it('reports a server killed -9 mid-run in one line naming engines.services.postgresUrl, and recovers when it is back', async () => {
    const url = await pgServer.database();
    const password = new URL(url).password;
    const store = await PostgresServiceStore.open(url);
    cleanup.defer(() => store.close());
    const s = service('survivor');
    await store.create(s);
    let lastDone = 0;
    let attempted = 0;
    const errors: Error[] = [];
    let stop = false;
    const writer = (async () => {
      for (let g = 1; !stop; g++) {
        attempted = g;
        try {
          await store.save(placedAt(s, g));
          lastDone = g;
        } catch (err) {
          errors.push(err as Error);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    })();
    await waitFor('saves before the kill', () => lastDone >= 5);
    await pgServer.kill();
    await waitFor('a save to fail while the server is down', () => errors.length >= 2);
    for (const err of errors) {
      expect(err).toBeInstanceOf(ServiceStoreUnavailable);
      expect(err.message).toContain('engines.services.postgresUrl');
      expect(err.message).toContain('postgres://postgres:***@127.0.0.1');
      expect(err.message).not.toContain(password);
      expect(err.message).not.toContain('\n');
    }
    const doneBeforeRestart = lastDone;
    await pgServer.restart();
    await waitFor('saves to succeed again', () => lastDone > doneBeforeRestart);
    stop = true;
    await writer;
    // Every save that resolved is kept; one that failed mid-commit may or may not be.
    const [loaded] = await store.load();
    expect(loaded!.generation).toBeGreaterThanOrEqual(lastDone);
    expect(loaded!.generation).toBeLessThanOrEqual(attempted);
    expect(loaded).toEqual(kept(placedAt(s, loaded!.generation)));
  });

  it('fails an operation on a stalled server after its timeout instead of hanging, and recovers once it answers', async () => {
    const url = await pgServer.database();
    const store = await PostgresServiceStore.open(url, { queryTimeoutMs: 1000, connectTimeoutMs: 1000 });
    cleanup.defer(() => store.close());
    const s = service('patient');
    await store.create(s);
    await store.save(placedAt(s, 1));
    pgServer.pause();
    try {
      const stalled = store.save(placedAt(s, 2));
      await expect(stalled).rejects.toBeInstanceOf(ServiceStoreUnavailable);
      await expect(stalled).rejects.toThrow(/\(engines\.services\.postgresUrl\): (Query read timeout|.*timeout)/);
    } finally {
      pgServer.resume();
    }
    await waitFor('a save to succeed after the stall', () => store.save(placedAt(s, 3)).then(() => true, () => false), 15_000);
    expect(await store.load()).toEqual([placedAt(s, 3)]);
  });

  it('refuses to open with a wrong password or no server, in one line naming the key and hiding the password', async () => {
    const url = new URL(pgServer.url());
    url.password = 'not-the-password';
    const wrong = PostgresServiceStore.open(url.toString());
    await expect(wrong).rejects.toBeInstanceOf(ServiceStoreUnavailable);
    await expect(wrong).rejects.toThrow(/^the services store cannot use PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres \(engines\.services\.postgresUrl\): password authentication failed for user "postgres"/);
    await expect(wrong).rejects.not.toThrow('not-the-password');
    const nowhere = PostgresServiceStore.open(`postgres://postgres:secret@127.0.0.1:1/postgres`);
    await expect(nowhere).rejects.toThrow(/cannot use PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/postgres \(engines\.services\.postgresUrl\): .*ECONNREFUSED/);
  });
});

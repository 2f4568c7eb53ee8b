import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { TickBatch } from '../../src/hub/tick-batch.js';
import { DeliveryLog, type AcceptOptions } from '../../src/hub/webhook/deliveries.js';

const TOPIC = 'github/acme/web';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A publish the test acknowledges (or fails) by hand, counting how often the log called it. */
function broker() {
  const calls: { ack(): void; fail(err: Error): void }[] = [];
  let connected = true;
  const opts = (overrides: Partial<AcceptOptions> = {}): AcceptOptions => ({
    publish: () => new Promise<void>((ack, fail) => void calls.push({ ack, fail })),
    canPublish: () => connected,
    timeoutMs: 30,
    maxPending: 100,
    ...overrides,
  });
  return { calls, opts, disconnect: () => (connected = false) };
}

function setup() {
  const db = new Database(':memory:');
  const log = new DeliveryLog(db, new TickBatch(db));
  const state = (id: string) => db.prepare<[string], { state: string }>('SELECT state FROM deliveries WHERE id = ?').get(id)?.state;
  /** A full disk: every write fails as SQLITE_FULL would, reads still work. */
  const diskFull = (full: boolean) => db.pragma(`query_only = ${full ? 1 : 0}`);
  return { db, log, state, diskFull };
}

describe('DeliveryLog', () => {
  it('publishes a new delivery once and answers every copy duplicate, from memory and then from the record', async () => {
    const { log, state } = setup();
    const b = broker();
    const first = log.accept('d1', TOPIC, b.opts());
    const copy = log.accept('d1', TOPIC, b.opts());
    await sleep(5);
    b.calls[0]!.ack();
    expect(await first).toEqual({ state: 'published', duplicate: false, topic: TOPIC });
    expect(await copy).toEqual({ state: 'published', duplicate: true, topic: TOPIC });
    await sleep(5);
    expect(state('d1')).toBe('published');
    expect(await log.accept('d1', TOPIC, b.opts())).toEqual({ state: 'published', duplicate: true, topic: TOPIC });
    expect(b.calls).toHaveLength(1);
  });

  it('publishes nothing when the record cannot be written, and goes through once it can', async () => {
    const { log, state, diskFull } = setup();
    const b = broker();
    diskFull(true);
    const refused = await log.accept('d1', TOPIC, b.opts());
    expect(refused).toMatchObject({ state: 'not-published', reason: expect.stringMatching(/could not be recorded/) });
    expect(b.calls).toHaveLength(0);
    diskFull(false);
    const again = log.accept('d1', TOPIC, b.opts());
    await sleep(5);
    b.calls[0]!.ack();
    expect(await again).toMatchObject({ state: 'published', duplicate: false });
    await sleep(5);
    expect(state('d1')).toBe('published');
  });

  it('never publishes while disconnected, and drops the record of what it then did not publish', async () => {
    const { log, state } = setup();
    const b = broker();
    b.disconnect();
    expect(await log.accept('d1', TOPIC, b.opts())).toMatchObject({ state: 'not-published', reason: expect.stringMatching(/not connected/) });
    // Connected when accepted, gone once the record committed: the record is dropped again.
    let connected = true;
    const dropping = log.accept('d2', TOPIC, b.opts({ canPublish: () => connected }));
    connected = false;
    expect(await dropping).toMatchObject({ state: 'not-published' });
    await sleep(5);
    expect(state('d2')).toBeUndefined();
    expect(b.calls).toHaveLength(0);
  });

  it('keeps a publish that failed once handed over in doubt: it may have reached the broker', async () => {
    const { log, state } = setup();
    const b = broker();
    const failed = log.accept('d1', TOPIC, b.opts());
    await sleep(5);
    b.calls[0]!.fail(new Error('Message removed'));
    expect(await failed).toEqual({ state: 'in-doubt', duplicate: false, topic: TOPIC });
    expect(state('d1')).toBe('publishing');
    expect(await log.accept('d1', TOPIC, b.opts())).toEqual({ state: 'in-doubt', duplicate: true, topic: TOPIC });
    expect(b.calls).toHaveLength(1);
  });

  it('answers publishing after the ack timeout, never publishes a copy, and confirms once the broker answers', async () => {
    const { log, state } = setup();
    const b = broker();
    expect(await log.accept('d1', TOPIC, b.opts())).toEqual({ state: 'publishing', duplicate: false, topic: TOPIC });
    expect(log.pending).toBe(1);
    expect(await log.accept('d1', TOPIC, b.opts())).toEqual({ state: 'publishing', duplicate: true, topic: TOPIC });
    expect(state('d1')).toBe('publishing');
    b.calls[0]!.ack();
    await sleep(5);
    expect(log.pending).toBe(0);
    expect(state('d1')).toBe('published');
    expect(await log.accept('d1', TOPIC, b.opts())).toEqual({ state: 'published', duplicate: true, topic: TOPIC });
    expect(b.calls).toHaveLength(1);
  });

  it('leaves a delivery in doubt when the client gives up after the timeout, or the process stopped before the PUBACK', async () => {
    const { db, log } = setup();
    const b = broker();
    await log.accept('late', TOPIC, b.opts());
    b.calls[0]!.fail(new Error('Connection closed'));
    await sleep(5);
    expect(await log.accept('late', TOPIC, b.opts())).toEqual({ state: 'in-doubt', duplicate: true, topic: TOPIC });
    await log.accept('held', TOPIC, b.opts());
    // A new process on the same database: the held one is in doubt, not published again.
    const restarted = new DeliveryLog(db, new TickBatch(db));
    expect(await restarted.accept('held', TOPIC, b.opts())).toEqual({ state: 'in-doubt', duplicate: true, topic: TOPIC });
    expect(b.calls).toHaveLength(2);
  });

  it('answers 200 duplicate from memory while the published mark cannot be written, and writes it later', async () => {
    const { log, state, diskFull } = setup();
    const b = broker();
    const first = log.accept('d1', TOPIC, b.opts());
    await sleep(5);
    diskFull(true);
    b.calls[0]!.ack();
    expect(await first).toMatchObject({ state: 'published', duplicate: false });
    await sleep(5);
    expect(state('d1')).toBe('publishing');
    expect(await log.accept('d1', TOPIC, b.opts())).toMatchObject({ state: 'published', duplicate: true });
    diskFull(false);
    await sleep(1200);
    expect(state('d1')).toBe('published');
    log.close();
  });

  it('refuses a new delivery beyond maxPending, but still answers copies', async () => {
    const { log } = setup();
    const b = broker();
    await log.accept('held', TOPIC, b.opts({ maxPending: 1 }));
    expect(await log.accept('other', TOPIC, b.opts({ maxPending: 1 }))).toMatchObject({ state: 'not-published', busy: true });
    expect(await log.accept('held', TOPIC, b.opts({ maxPending: 1 }))).toMatchObject({ state: 'publishing', duplicate: true });
    expect(b.calls).toHaveLength(1);
  });

  it('reads deliveries recorded before the publishing state as published', async () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE deliveries (id TEXT PRIMARY KEY, topic TEXT NOT NULL, received_at INTEGER NOT NULL)');
    db.prepare('INSERT INTO deliveries VALUES (?, ?, ?)').run('old', TOPIC, Date.now());
    const log = new DeliveryLog(db, new TickBatch(db));
    expect(await log.accept('old', TOPIC, broker().opts())).toEqual({ state: 'published', duplicate: true, topic: TOPIC });
  });
});

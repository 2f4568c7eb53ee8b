import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SemaphoreConfig } from '../../src/hub/engines/semaphore/config.js';
import { SemaphoreEngine } from '../../src/hub/engines/semaphore/semaphore-engine.js';
import { SqliteSemaphoreStore } from '../../src/hub/engines/semaphore/store.js';
import { createLogger } from '../../src/shared/logger.js';
import { topicMatches } from '../../src/shared/topic-match.js';
import { ManualClock } from '../support/manual-clock.js';

const T0 = Date.UTC(2024, 0, 1);
type Sent = { topic: string; payload: string; retain: boolean };

/**
 * The engine over a fake publisher on the manual clock. `retained()` is what a broker would keep:
 * the last retained payload per topic, an empty one deleting it. Pass `db` again for a restart,
 * and `broker`, the retained messages the engine reads back when it starts.
 */
function hub(clock: ManualClock, db: Database.Database, config: Record<string, unknown> = {}, broker: Record<string, string> = {}) {
  const sent: Sent[] = [];
  const publisher = { publish: async (topic: string, payload: string, o: { retain?: boolean }) => void sent.push({ topic, payload, retain: o.retain ?? false }) };
  const readRetained = async (filters: string[], onMessage: (topic: string, payload: Buffer) => void) => {
    for (const [topic, payload] of Object.entries(broker)) if (filters.some((f) => topicMatches(f, topic))) onMessage(topic, Buffer.from(payload));
  };
  const engine = new SemaphoreEngine({ publisher, db, clock, log: createLogger('test', 'silent'), readRetained }, SemaphoreConfig.parse({ positionUpdateMs: 0, ...config }));
  const send = (topic: string, payload: string) => engine.handle(topic, Buffer.from(payload));
  const register = (uid: string, timeout: number, extra: Record<string, unknown> = {}) => send('coordinosaur/c/register', JSON.stringify({ uid, timeout, ...extra }));
  const since = (from: number) => sent.slice(from).map((m) => `${m.retain ? 'retain' : 'send'} ${m.topic.replace(/^coordinosaur\/c\//, '')} ${m.payload}`);
  return { engine, sent, send, register, since };
}

/** A broker's retained store fed with everything `sent` so far. */
function retained(sent: Sent[]): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const m of sent.filter((s) => s.retain)) {
    if (m.payload === '') delete kept[m.topic];
    else kept[m.topic] = m.payload;
  }
  return kept;
}

const go = (uid: string, token: string) => JSON.stringify({ v: 1, uid, token });
const expired = (uid: string, reason: string, at: number, token?: string) => JSON.stringify({ v: 1, uid, reason, at: new Date(at).toISOString(), ...(token && { token }) });

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (stops.length) await stops.pop()!();
});
function started(clock: ManualClock, db: Database.Database, config?: Record<string, unknown>, broker?: Record<string, string>) {
  const h = hub(clock, db, config, broker);
  stops.push(() => h.engine.stop());
  return h.engine.start().then(() => h);
}

describe('semaphore retained go and expired', () => {
  it('keeps a go retained while its job holds the slot and clears it when the job ends', async () => {
    const clock = new ManualClock(T0);
    const h = await started(clock, new Database(':memory:'));
    h.register('a', 60);
    h.register('b', 60);
    h.send('coordinosaur/c/finished', 'a');
    expect(h.since(0)).toEqual(['retain go/a a', 'send queued/b {"v":1,"uid":"b","position":1,"waiting":1}', 'retain go/a ', 'retain go/b b']);
    h.send('coordinosaur/c/aborted', 'b');
    expect(retained(h.sent)).toEqual({});
  });

  it('gives a token registration a JSON go with its token, and takes a repeat of it as a no-op', async () => {
    const clock = new ManualClock(T0);
    const h = await started(clock, new Database(':memory:'));
    h.register('a', 60, { token: 't1' });
    h.register('b', 60, { token: 't2' });
    expect(h.since(0)).toEqual([`retain go/a ${go('a', 't1')}`, 'send queued/b {"v":1,"uid":"b","token":"t2","position":1,"waiting":1}']);
    const n = h.sent.length;
    // A late copy of each register (mqtt.js resending QoS 1, or the client after a reconnect).
    h.register('a', 60, { token: 't1' });
    h.register('b', 60, { token: 't2' });
    expect(h.since(n)).toEqual([]);
    // Another registration of a uid that holds a place is still refused.
    h.register('a', 60, { token: 't3' });
    h.register('b', 60);
    expect(h.sent.slice(n).map((m) => JSON.parse(m.payload).code)).toEqual(['duplicate-uid', 'duplicate-uid']);
  });

  it('retains an expired until the uid registers again, clearing it before the new job is answered', async () => {
    const clock = new ManualClock(T0);
    const h = await started(clock, new Database(':memory:'));
    h.register('a', 10, { token: 't1' });
    clock.advance(10_000);
    expect(h.since(1)).toEqual([`retain expired/a ${expired('a', 'timeout', T0 + 10_000, 't1')}`, 'retain go/a ']);
    // The same registration again is a late copy: no new job.
    h.register('a', 10, { token: 't1' });
    expect(h.since(3)).toEqual([]);
    h.register('a', 10, { token: 't2' });
    expect(h.since(3)).toEqual(['retain expired/a ', `retain go/a ${go('a', 't2')}`]);
    expect(retained(h.sent)).toEqual({ 'coordinosaur/c/go/a': go('a', 't2') });
  });

  it('clears a retained expired after retainExpiredSeconds, also when that time passed while the hub was down', async () => {
    const clock = new ManualClock(T0);
    const db = new Database(':memory:');
    const h = await started(clock, db, { retainExpiredSeconds: 100 });
    h.register('a', 10);
    h.register('b', 10, { queueTimeout: 5 });
    clock.advance(5_000);
    clock.advance(5_000);
    expect(Object.keys(retained(h.sent))).toEqual(['coordinosaur/c/expired/b', 'coordinosaur/c/expired/a']);
    clock.advance(95_000);
    expect(Object.keys(retained(h.sent))).toEqual(['coordinosaur/c/expired/a']);
    await h.engine.stop();
    clock.advance(10_000);
    const again = await started(clock, db, { retainExpiredSeconds: 100 });
    expect(again.since(0)).toEqual(['retain expired/a ']);
    expect(new SqliteSemaphoreStore(db).load().ended).toEqual([]);
  });

  it('after a restart publishes the go of every job it restored as granted and the expired of those that ran out meanwhile', async () => {
    const clock = new ManualClock(T0);
    const db = new Database(':memory:');
    const first = await started(clock, db, { maxConcurrentJobs: 3 });
    first.register('long', 600, { token: 'tl' });
    first.register('short', 10);
    first.register('gone', 5);
    clock.advance(5_000); // gone expires while the hub is up; its client may not have heard
    await first.engine.stop();
    clock.advance(10_000); // short's timeout passes while the hub is down

    const second = await started(clock, db, { maxConcurrentJobs: 3 });
    // An embedded broker forgot every retained message: all of them are published again.
    expect(retained(second.sent)).toEqual({
      'coordinosaur/c/go/long': go('long', 'tl'),
      'coordinosaur/c/expired/gone': expired('gone', 'timeout', T0 + 5_000),
      'coordinosaur/c/expired/short': expired('short', 'timeout', T0 + 15_000),
    });
    // No grant is made twice: the restored holder still holds its slot.
    second.register('long', 600, { token: 'other' });
    expect(JSON.parse(second.sent.at(-1)!.payload)).toMatchObject({ code: 'duplicate-uid' });
  });

  it('at start makes the retained copies a broker kept agree with the state', async () => {
    const clock = new ManualClock(T0);
    const db = new Database(':memory:');
    const first = await started(clock, db);
    first.register('a', 60, { token: 't1' });
    clock.advance(1_000);
    first.send('coordinosaur/c/finished', 'a');
    first.register('b', 60);
    clock.advance(60_000);
    const kept = retained(first.sent);
    expect(kept).toEqual({ 'coordinosaur/c/expired/b': expired('b', 'timeout', T0 + 61_000) });
    await first.engine.stop();

    // Besides what agrees with the state, the broker kept a go of a job that ended (its clear was
    // lost when the hub was killed), an expired the state no longer keeps, and a copy under the
    // other prefix: those are cleared.
    const stale = { 'coordinosaur/c/go/a': go('a', 't1'), 'coordinosaur/c/expired/z': expired('z', 'timeout', T0), '/coordinosaur/c/expired/b': kept['coordinosaur/c/expired/b']! };
    const second = await started(clock, db, {}, { ...kept, ...stale });
    expect(second.since(0)).toEqual([`retain expired/b ${kept['coordinosaur/c/expired/b']}`, 'retain go/a ', 'retain expired/z ', 'retain /coordinosaur/c/expired/b ']);
    second.register('a', 60, { token: 't2' });
    await second.engine.stop();

    // A go that disagrees with a job still holding its slot is replaced by the right one.
    const third = await started(clock, db, {}, { 'coordinosaur/c/go/a': go('a', 't1') });
    expect(third.since(0).filter((m) => m.includes('go/a'))).toEqual([`retain go/a ${go('a', 't2')}`, `retain go/a ${go('a', 't2')}`]);
    // Its own events do not come back to it; one that did would change nothing.
    const n = third.sent.length;
    third.send('coordinosaur/c/go/a', go('a', 't1'));
    third.send('coordinosaur/c/expired/a', '');
    expect(third.since(n)).toEqual([]);
  });

  it('adds the token column to a jobs table made before tokens, keeping its jobs', () => {
    const db = new Database(':memory:');
    db.exec(`CREATE TABLE semaphore_jobs (channel TEXT NOT NULL, uid TEXT NOT NULL, route TEXT NOT NULL, timeout_ms INTEGER NOT NULL,
      registered_at INTEGER NOT NULL, queue_deadline INTEGER, granted_at INTEGER, PRIMARY KEY (channel, uid))`);
    db.exec(`INSERT INTO semaphore_jobs VALUES ('c', 'old', 'coordinosaur', 1000, 1, NULL, 2)`);
    expect(new SqliteSemaphoreStore(db).load().jobs).toEqual([
      { channel: 'c', uid: 'old', route: 'coordinosaur', timeoutMs: 1000, registeredAt: 1, queueDeadline: null, grantedAt: 2, token: null },
    ]);
  });
});

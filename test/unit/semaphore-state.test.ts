import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../src/hub/engines/engine.js';
import { channelOptionsResolver, SemaphoreConfig } from '../../src/hub/engines/semaphore/config.js';
import { SemaphoreState, type NewJob } from '../../src/hub/engines/semaphore/semaphore-state.js';
import { SqliteSemaphoreStore } from '../../src/hub/engines/semaphore/store.js';

// Fake timers drive both Date.now() and setTimeout, so the clock below is fully controlled.
const clock: Clock = { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };
const T0 = Date.UTC(2024, 0, 1);

/** A state over an in-memory SQLite store; pass the same db again to simulate a hub restart. */
function setup(config: Record<string, unknown> = {}, db = new Database(':memory:')) {
  const cfg = SemaphoreConfig.parse(config);
  const events: string[] = [];
  const state = new SemaphoreState({
    options: channelOptionsResolver(cfg),
    clock,
    store: new SqliteSemaphoreStore(db),
    positionUpdateMs: cfg.positionUpdateMs,
    events: {
      granted: (ch, job) => events.push(`go ${ch} ${job.uid}`),
      queued: (ch, job, position) => events.push(`queued ${ch} ${job.uid} ${position}`),
      expired: (ch, job, reason) => events.push(`expired ${ch} ${job.uid} ${reason}`),
      // Retained-topic upkeep: test/unit/semaphore-retained.test.ts.
      restored: () => undefined,
      released: () => undefined,
      keptExpiry: () => undefined,
      forgotExpiry: () => undefined,
    },
    keepEndedMs: 86_400_000,
  });
  state.load();
  const reg = (uid: string, timeout = 60, extra: Partial<NewJob> = {}) => state.register('c', { uid, route: 'coordinosaur', timeoutMs: timeout * 1000, ...extra });
  return { state, events, db, reg };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('SemaphoreState', () => {
  it('grants up to the limit at once, queues the rest FIFO and grants the head on release', () => {
    const { state, events, reg } = setup({ maxConcurrentJobs: 2, positionUpdateMs: 0 });
    expect(['a', 'b', 'c', 'd'].map((u) => reg(u))).toEqual(['granted', 'granted', 'queued', 'queued']);
    expect(events).toEqual(['go c a', 'go c b', 'queued c c 1', 'queued c d 2']);
    events.length = 0;
    expect(state.remove('c', 'b')).toBe('working');
    // Granted in the same call: nothing waits for a timer.
    expect(events).toEqual(['go c c']);
    expect(vi.getTimerCount()).toBe(2); // one expiry alarm per working job (a, c), none for the queue
  });

  it('answers a second register of a working or waiting uid with duplicate and no second grant', () => {
    const { events, reg, state } = setup({ positionUpdateMs: 0 });
    reg('a');
    reg('b');
    expect(reg('a')).toBe('duplicate');
    expect(reg('b')).toBe('duplicate');
    expect(events).toEqual(['go c a', 'queued c b 1']);
    expect(state.info('c').waiting.map((w) => w.uid)).toEqual(['b']);
  });

  it('removes an aborted waiter from the queue so it is never granted', () => {
    const { state, events, reg } = setup({ positionUpdateMs: 0 });
    reg('a');
    reg('b');
    reg('c');
    state.remove('c', 'b');
    events.length = 0;
    state.remove('c', 'a');
    expect(events).toEqual(['go c c']);
    expect(state.remove('c', 'b')).toBe(null);
  });

  it('evicts a waiting or working job with a reason its client is told, and grants the next', () => {
    const { state, events, reg } = setup({ positionUpdateMs: 0 });
    reg('a');
    reg('b');
    reg('c');
    events.length = 0;
    expect(state.evict('c', 'b', 'cancelled')).toBe(true);
    expect(state.evict('c', 'a', 'cancelled')).toBe(true);
    expect(events).toEqual(['expired c b cancelled', 'expired c a cancelled', 'go c c']);
    expect(state.evict('c', 'a', 'cancelled')).toBe(false);
  });

  it('takes the slot back from a job that outlives timeout + offset, and grants the next', () => {
    const { events, reg, state } = setup({ timeoutOffset: 2, positionUpdateMs: 0 });
    reg('a', 10);
    reg('b', 10);
    vi.advanceTimersByTime(11_999);
    expect(events).toEqual(['go c a', 'queued c b 1']);
    vi.advanceTimersByTime(1);
    expect(events.slice(2)).toEqual(['expired c a timeout', 'go c b']);
    expect(state.remove('c', 'a')).toBe(null);
  });

  it('drops a waiter whose queue deadline passes', () => {
    const { events, reg, state } = setup({ positionUpdateMs: 0 });
    reg('a');
    reg('b', 60, { queueTimeoutMs: 5000 });
    vi.advanceTimersByTime(5000);
    expect(events).toEqual(['go c a', 'queued c b 1', 'expired c b queue-timeout']);
    expect(state.info('c').waiting).toEqual([]);
  });

  it('grants a quota-blocked waiter exactly when the sliding window frees, with one alarm', () => {
    const { state, events, reg } = setup({ maxConcurrentJobs: 10, quotasPerInterval: { 10: { name: 'ten', limit: 2 } }, positionUpdateMs: 0 });
    reg('a');
    vi.advanceTimersByTime(3000);
    reg('b');
    reg('c');
    reg('d');
    expect(events).toEqual(['go c a', 'go c b', 'queued c c 1', 'queued c d 2']);
    expect(vi.getTimerCount()).toBe(3); // two expiry alarms + one quota alarm
    expect(state.info('c').quotas).toEqual([{ seconds: 10, name: 'ten', limit: 2, used: 2, freeAt: new Date(T0 + 10_000).toISOString() }]);
    vi.advanceTimersByTime(6999);
    expect(events).toHaveLength(4);
    vi.advanceTimersByTime(1); // a's grant leaves the window at T0+10 s
    expect(events.slice(4)).toEqual(['go c c']);
    vi.advanceTimersByTime(2999);
    expect(events).toHaveLength(5);
    vi.advanceTimersByTime(1); // b's grant leaves at T0+13 s
    expect(events.slice(5)).toEqual(['go c d']);
  });

  it('treats a limit ≤ 0 as unlimited', () => {
    const { events, reg } = setup({ maxConcurrentJobs: 5, quotasPerInterval: { 60: { name: 'minute', limit: 0 } } });
    ['a', 'b', 'c'].forEach((u) => reg(u));
    expect(events).toEqual(['go c a', 'go c b', 'go c c']);
  });

  it('applies concurrency overrides at once, keeps them across restarts and resets them with null', () => {
    const { state, events, reg, db } = setup({ positionUpdateMs: 0 });
    state.setConcurrency('c', 0);
    reg('a');
    reg('b');
    expect(events).toEqual(['queued c a 1', 'queued c b 2']);
    state.setConcurrency('c', 3);
    expect(events.slice(2)).toEqual(['go c a', 'go c b']);
    state.stop();
    const again = setup({ positionUpdateMs: 0 }, db);
    expect(again.state.info('c').maxConcurrentJobs).toBe(3);
    again.state.setConcurrency('c', null);
    expect(again.state.info('c').maxConcurrentJobs).toBe(1);
  });

  it('drops an idle channel, keeping it only while a quota window is still live', () => {
    const { state, reg } = setup({ quotasPerInterval: { 5: { name: 'five', limit: 1 } } });
    reg('a');
    expect(state.activeChannels).toBe(1);
    state.remove('c', 'a');
    expect(state.activeChannels).toBe(1);
    vi.advanceTimersByTime(5000);
    expect(state.activeChannels).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    const plain = setup();
    plain.reg('x');
    plain.state.remove('c', 'x');
    expect(plain.state.activeChannels).toBe(0);
  });

  it('restores working and waiting jobs in order after a restart, expiring those that ran out meanwhile', () => {
    const first = setup({ maxConcurrentJobs: 2, positionUpdateMs: 0 });
    first.reg('short', 5);
    first.reg('long', 600);
    first.reg('w1', 600);
    first.reg('w2', 600, { queueTimeoutMs: 3000 });
    first.reg('w3', 600);
    first.state.stop();
    vi.advanceTimersByTime(10_000); // the hub is down for 10 s
    const second = setup({ maxConcurrentJobs: 2, positionUpdateMs: 0 }, first.db);
    expect(second.events).toEqual(['expired c short timeout', 'expired c w2 queue-timeout', 'go c w1']);
    expect(second.state.info('c').working.map((w) => w.uid)).toEqual(['long', 'w1']);
    expect(second.reg('long')).toBe('duplicate');
    second.state.remove('c', 'long');
    expect(second.events.at(-1)).toBe('go c w3');
  });

  it('restores quota windows after a restart', () => {
    const quotas = { quotasPerInterval: { 60: { name: 'minute', limit: 1 } }, maxConcurrentJobs: 5, positionUpdateMs: 0 };
    const first = setup(quotas);
    first.reg('a');
    first.state.remove('c', 'a');
    first.state.stop();
    vi.advanceTimersByTime(30_000);
    const second = setup(quotas, first.db);
    expect(second.reg('b')).toBe('queued');
    vi.advanceTimersByTime(30_000);
    expect(second.events).toEqual(['queued c b 1', 'go c b']);
  });

  it('tells the head of the queue its new position at most once per interval', () => {
    const { state, events, reg } = setup({ positionUpdateMs: 1000 });
    ['a', 'b', 'c', 'd'].forEach((u) => reg(u));
    events.length = 0;
    state.remove('c', 'a');
    state.remove('c', 'b');
    expect(events).toEqual(['go c b', 'go c c']);
    vi.advanceTimersByTime(1000);
    expect(events.slice(2)).toEqual(['queued c d 1']);
  });

  it('does not fire a timeout longer than setTimeout can hold early', () => {
    const { events, reg } = setup();
    reg('a', 40 * 86_400);
    vi.advanceTimersByTime(30 * 86_400_000);
    expect(events).toEqual(['go c a']);
    vi.advanceTimersByTime(10 * 86_400_000);
    expect(events).toEqual(['go c a', 'expired c a timeout']);
  });
});

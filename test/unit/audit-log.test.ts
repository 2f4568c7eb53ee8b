import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { AuditInput } from '../../src/hub/audit/audit-entry.js';
import { AuditLog, type AuditLogOptions } from '../../src/hub/audit/audit-log.js';
import { TickBatch } from '../../src/hub/tick-batch.js';

const refusedLogin = (who: string, address = '10.0.0.9'): AuditInput => ({ kind: 'login', via: 'mqtt', who, identity: 'none', address, action: 'login', outcome: 'rejected', reason: 'wrong password' });
const pause = (who: string): AuditInput => ({ kind: 'action', via: 'api', who, identity: 'token', address: '127.0.0.1', action: 'rollout.pause', target: 'web.prod.0123456789ab', outcome: 'accepted' });

function setup(opts: Partial<AuditLogOptions> = {}) {
  const db = new Database(':memory:');
  const clock = { time: Date.parse('2026-12-01T10:00:00Z') };
  let changed = 0;
  const log = new AuditLog(db, new TickBatch(db), { maxEntries: 1000, maxAgeDays: 30, now: () => clock.time, onChanged: () => changed++, ...opts });
  const rows = () => (db.prepare('SELECT COUNT(*) AS n FROM audit').get() as { n: number }).n;
  return { db, log, clock, rows, changes: () => changed };
}

describe('AuditLog', () => {
  it('commits the entries of one turn together, each record resolving once its entry is on disk, and notifies once per commit', async () => {
    const { log, rows, changes } = setup();
    const waits = [log.record(pause('alice')), log.record(refusedLogin('mallory'))];
    expect(rows()).toBe(0);
    await Promise.all(waits);
    expect(rows()).toBe(2);
    expect(changes()).toBe(1);
    const page = log.list({ offset: 0, limit: 10 });
    expect(page.total).toBe(2);
    expect(page.items[0]).toMatchObject({ id: 1, who: 'alice', identity: 'token', action: 'rollout.pause', target: 'web.prod.0123456789ab', outcome: 'accepted', count: 1, at: '2026-12-01T10:00:00.000Z' });
    expect(page.items[1]).toMatchObject({ who: 'mallory', address: '10.0.0.9', outcome: 'rejected', reason: 'wrong password' });
  });

  it('coalesces a login failed in a loop into one entry with a count, and starts a new one once the window has passed', async () => {
    const { log, rows, clock } = setup();
    for (let i = 0; i < 5000; i++) {
      log.note(refusedLogin('mallory'));
      clock.time += 10;
    }
    await log.record(refusedLogin('mallory'));
    // 50 s of attempts fall in one 60 s window.
    expect(rows()).toBe(1);
    expect(log.list({ offset: 0, limit: 10 }).items[0]).toMatchObject({ count: 5001, at: '2026-12-01T10:00:00.000Z', lastAt: '2026-12-01T10:00:50.000Z' });
    clock.time += 20_000;
    await log.record(refusedLogin('mallory'));
    expect(log.list({ offset: 0, limit: 10 }).items.map((e) => e.count)).toEqual([5001, 1]);
  });

  it('counts a flood that changes its name every time in one entry without names past the allowance', async () => {
    const { log, rows } = setup({ coalesce: { floodRows: 50 } });
    for (let i = 0; i < 10_000; i++) log.note(refusedLogin(`guess-${i}`, `10.0.${i % 250}.1`));
    await log.record(pause('alice'));
    expect(rows()).toBe(52);
    const items = log.list({ offset: 0, limit: 100 }).items;
    expect(items[50]).toMatchObject({ who: null, address: null, action: 'login', outcome: 'rejected', count: 10_000 - 50 });
    expect(items[50]!.reason).toMatch(/more than 50 refusals in 60 s/);
    // Actions are never folded into the flood entry.
    expect(items[51]).toMatchObject({ who: 'alice', action: 'rollout.pause' });
  });

  it('keeps at most audit.maxEntries, dropping the oldest, and drops entries older than audit.maxAgeDays', async () => {
    const { log, rows, clock } = setup({ maxEntries: 100, maxAgeDays: 1 });
    for (let i = 0; i < 350; i++) {
      void log.record({ ...pause(`u${i}`), target: `r${i}` });
      if (i % 7 === 0) await log.record({ ...pause('x'), target: `x${i}` });
    }
    await log.record(pause('last'));
    expect(rows()).toBe(100);
    const items = log.list({ offset: 0, limit: 200 }).items;
    expect(items.at(-1)).toMatchObject({ who: 'last' });
    expect(items[0]!.id).toBe(items.at(-1)!.id - 99);
    clock.time += 86_400_000 + 1;
    await log.record(pause('tomorrow'));
    await log.pruneOld();
    expect(log.list({ offset: 0, limit: 10 }).items.map((e) => e.who)).toEqual(['tomorrow']);
  });

  it('lists from `since` on, by pages, and continues the ids after a restart', async () => {
    const { db, log, clock } = setup();
    await log.record(pause('early'));
    clock.time += 3_600_000;
    const since = clock.time;
    for (const who of ['a', 'b', 'c']) await log.record(pause(who));
    expect(log.list({ since, offset: 1, limit: 1 })).toMatchObject({ total: 3, offset: 1, limit: 1, items: [{ who: 'b' }] });
    const reopened = new AuditLog(db, new TickBatch(db), { maxEntries: 1000, maxAgeDays: 30, now: () => clock.time });
    await reopened.record(pause('after'));
    expect(reopened.list({ since, offset: 3, limit: 5 }).items).toMatchObject([{ id: 5, who: 'after' }]);
  });

  it('writes an entry whose commit failed (a full disk) again with the next one', async () => {
    const { db, log } = setup();
    db.pragma('query_only = 1');
    await expect(log.record(pause('lost?'))).rejects.toThrow();
    db.pragma('query_only = 0');
    await log.record(pause('next'));
    expect(log.list({ offset: 0, limit: 10 }).items.map((e) => e.who)).toEqual(['lost?', 'next']);
  });

  it('while commits fail holds at most 10,000 entries for the next one, and says so at most every 10 s', async () => {
    const errors: string[] = [];
    const { db, log, clock } = setup({ maxEntries: 20_000, onError: (_err, what) => errors.push(what) });
    db.pragma('query_only = 1');
    for (let i = 0; i < 12_000; i++) {
      await log.record({ ...pause(`u${i}`), target: `t${i}` }).catch(() => undefined);
      clock.time += 1;
    }
    expect(errors).toEqual(['audit entries could not be written: 1 wait for the next commit', 'audit entries could not be written: 10000 wait for the next commit, 1 oldest dropped so far']);
    db.pragma('query_only = 0');
    await log.record(pause('back'));
    const page = log.list({ offset: 0, limit: 1 });
    expect(page.total).toBe(10_001);
    expect(page.items[0]!.who).toBe('u2000');
  });

  it('bounds the free text a client sends', async () => {
    const { log } = setup();
    await log.record({ ...refusedLogin('m'.repeat(10_000)), reason: 'r'.repeat(10_000) });
    const [entry] = log.list({ offset: 0, limit: 1 }).items;
    expect(entry!.who!.length).toBe(128);
    expect(entry!.reason!.length).toBe(500);
  });
});

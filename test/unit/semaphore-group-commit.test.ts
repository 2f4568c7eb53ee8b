import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SemaphoreConfig } from '../../src/hub/engines/semaphore/config.js';
import { GroupCommit } from '../../src/hub/engines/semaphore/group-commit.js';
import { SemaphoreEngine } from '../../src/hub/engines/semaphore/semaphore-engine.js';
import { systemClock } from '../../src/hub/engines/engine.js';
import { openStateDb } from '../../src/hub/state-db.js';
import { TickBatch } from '../../src/hub/tick-batch.js';
import { createLogger } from '../../src/shared/logger.js';
import { Cleanup } from '../support/cleanup.js';

const turn = () => new Promise((r) => setImmediate(r));

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/**
 * The hub's state database in a temp dir, and a second connection to the same file: what it
 * reads is what was committed, what a hub restarted after a kill -9 would find.
 */
function stateDb() {
  const dir = cleanup.tempDir('pushfleet-sem-commit-');
  const db = openStateDb(dir);
  cleanup.defer(() => db.close());
  db.exec('CREATE TABLE t (n INTEGER)');
  const reader = new Database(join(dir, 'hub.sqlite'), { readonly: true });
  cleanup.defer(() => reader.close());
  const committed = () => reader.prepare<[], { n: number }>('SELECT n FROM t ORDER BY rowid').all().map((r) => r.n);
  return { db, reader, committed };
}

describe('GroupCommit', () => {
  it('commits a turn’s writes together and sends its messages only after, in order', async () => {
    const { db, committed } = stateDb();
    const commit = new GroupCommit(db, new TickBatch(db), () => undefined);
    const insert = db.prepare('INSERT INTO t (n) VALUES (?)');
    const log: string[] = [];
    const sendSeeing = (name: string) => commit.send(() => log.push(`${name} sees ${committed().join(',')}`));
    commit.write(() => insert.run(1));
    sendSeeing('a');
    commit.write(() => insert.run(2));
    sendSeeing('b');
    expect(committed()).toEqual([]);
    expect(log).toEqual([]);
    await turn();
    expect(log).toEqual(['a sees 1,2', 'b sees 1,2']);

    // Nothing pending: a message goes at once.
    sendSeeing('c');
    expect(log.at(-1)).toBe('c sees 1,2');
  });

  it('withholds the messages of a turn whose commit failed, and stores none of its writes', async () => {
    const { db, committed } = stateDb();
    const failures: number[] = [];
    const commit = new GroupCommit(db, new TickBatch(db), (_err, withheld) => failures.push(withheld));
    const sent: string[] = [];
    commit.write(() => db.prepare('INSERT INTO t (n) VALUES (1)').run());
    commit.write(() => db.prepare('INSERT INTO missing (n) VALUES (2)').run());
    commit.send(() => sent.push('go'));
    commit.send(() => sent.push('queued'));
    await turn();
    expect(sent).toEqual([]);
    expect(failures).toEqual([2]);
    expect(committed()).toEqual([]);

    // The next turn is on its own.
    commit.write(() => db.prepare('INSERT INTO t (n) VALUES (3)').run());
    commit.send(() => sent.push('next'));
    await turn();
    expect(sent).toEqual(['next']);
    expect(committed()).toEqual([3]);
  });

  it('withdraws a keyed message of the turn still taking writes, not one already committed', async () => {
    const { db } = stateDb();
    const commit = new GroupCommit(db, new TickBatch(db), () => undefined);
    const sent: string[] = [];
    commit.write(() => undefined);
    commit.send(() => sent.push('clear'), 'k');
    commit.send(() => sent.push('other'));
    expect(commit.withdraw('k')).toBe(true);
    expect(commit.withdraw('k')).toBe(false);
    commit.send(() => sent.push('go'));
    await turn();
    expect(sent).toEqual(['other', 'go']);
    commit.write(() => undefined);
    commit.send(() => sent.push('late clear'), 'k');
    await turn();
    expect(commit.withdraw('k')).toBe(false);
    expect(sent.at(-1)).toBe('late clear');
  });

  it('without a batch writes and sends each at once', () => {
    const { db, committed } = stateDb();
    const commit = new GroupCommit(db, undefined, () => undefined);
    const seen: string[] = [];
    commit.write(() => db.prepare('INSERT INTO t (n) VALUES (7)').run());
    commit.send(() => seen.push(committed().join(',')));
    expect(seen).toEqual(['7']);
  });
});

describe('SemaphoreEngine over the hub’s batch', () => {
  it('never publishes a go before the grant it announces is committed, nor a cleared go before the job’s end', async () => {
    const { db, reader } = stateDb();
    const holder = (uid: string) => reader.prepare<[string], { granted_at: number | null }>("SELECT granted_at FROM semaphore_jobs WHERE channel = 'c' AND uid = ?").get(uid);
    const problems: string[] = [];
    const sent: string[] = [];
    const publisher = {
      publish: async (topic: string, payload: string) => {
        const uid = /^coordinosaur\/c\/go\/(.+)$/.exec(topic)?.[1];
        if (uid === undefined) return;
        // What a hub restarted now would find: a published go must be there, a cleared one gone.
        const row = holder(uid);
        if (payload !== '' && row?.granted_at == null) problems.push(`go ${uid} published before its grant was committed`);
        if (payload === '' && row) problems.push(`go ${uid} cleared before its end was committed`);
        sent.push(`${uid} ${payload === '' ? 'cleared' : 'go'}`);
      },
    };
    const batch = new TickBatch(db);
    const engine = new SemaphoreEngine({ publisher, db, batch, clock: systemClock, log: createLogger('test', 'silent') }, SemaphoreConfig.parse({ maxConcurrentJobs: 3, positionUpdateMs: 0 }));
    await engine.start();
    cleanup.defer(() => engine.stop());
    const send = (action: string, payload: string) => engine.handle(`coordinosaur/c/${action}`, Buffer.from(payload));
    // Bursts as one socket read brings them: registers (three granted, three queued), then the
    // holders' finished, each handing its slot to a waiter, then the new holders' finished.
    for (let round = 0; round < 5; round++) {
      const uids = Array.from({ length: 6 }, (_, i) => `j${round}-${i}`);
      for (const uid of uids) send('register', JSON.stringify({ uid, timeout: 60 }));
      await turn();
      for (const uid of uids.slice(0, 3)) send('finished', uid);
      await turn();
      for (const uid of uids.slice(3)) send('finished', uid);
      await turn();
    }
    expect(problems).toEqual([]);
    expect(sent.filter((s) => s.endsWith(' go'))).toHaveLength(30);
    expect(sent.filter((s) => s.endsWith(' cleared'))).toHaveLength(30);
  });

  it('drops the clear of a go that the same commit publishes again unchanged (finished, then register of the same uid)', async () => {
    const { db } = stateDb();
    const sent: string[] = [];
    const publisher = { publish: async (topic: string, payload: string) => void sent.push(`${topic.replace('coordinosaur/c/', '')} ${payload}`) };
    const engine = new SemaphoreEngine({ publisher, db, batch: new TickBatch(db), clock: systemClock, log: createLogger('test', 'silent') }, SemaphoreConfig.parse({ positionUpdateMs: 0 }));
    await engine.start();
    cleanup.defer(() => engine.stop());
    const send = (action: string, payload: string) => engine.handle(`coordinosaur/c/${action}`, Buffer.from(payload));
    send('register', '{"uid":"a","timeout":60}');
    send('register', '{"uid":"t","timeout":60,"token":"t1"}');
    await turn();
    expect(sent.splice(0)).toEqual(['go/a a', 'queued/t {"v":1,"uid":"t","token":"t1","position":1,"waiting":1}']);
    // One read: a's finished hands the slot to t; a registers again and waits.
    send('finished', 'a');
    send('register', '{"uid":"a","timeout":60}');
    await turn();
    expect(sent.splice(0)).toEqual(['go/a ', 'go/t {"v":1,"uid":"t","token":"t1"}', 'queued/a {"v":1,"uid":"a","position":1,"waiting":1}']);
    // t's job ends and a new one of t (another token) starts in one read: its go differs, the clear stays.
    send('finished', 't');
    send('register', '{"uid":"t","timeout":60,"token":"t2"}');
    await turn();
    expect(sent.splice(0)).toEqual(['go/t ', 'go/a a', 'queued/t {"v":1,"uid":"t","token":"t2","position":1,"waiting":1}']);
    // a finishes and registers again while nobody waits before it: the same go again, without a clear.
    send('aborted', 't');
    send('finished', 'a');
    send('register', '{"uid":"a","timeout":60}');
    await turn();
    expect(sent.splice(0)).toEqual(['go/a a']);
  });
});

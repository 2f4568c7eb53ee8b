import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { Run } from '../../src/hub/engines/jobs/model.js';
import { RunStore } from '../../src/hub/engines/jobs/run-store.js';

const run = (id: string, over: Partial<Run> = {}): Run => ({ id, job: 'j', name: `j-${id}`, executor: 'agent', topic: 't', payload: 'p', params: { A: '1' }, status: 'pending', createdAt: 1, ...over });

describe('RunStore', () => {
  it('gives back, from the same file, runs under way and finished runs with duties left, as they were written', () => {
    const db = new Database(':memory:');
    const first = new RunStore(db);
    first.insert([run('000000000a'), run('000000000b', { status: 'running', startedAt: 2, agent: 'a1' }), run('000000000c')]);
    first.update(run('000000000c', { status: 'failed', reason: 'exit code 1', endedAt: 3 }));
    first.done('000000000c', 'logsKept');
    const again = new RunStore(db);
    expect(again.active()).toEqual([run('000000000a'), run('000000000b', { status: 'running', startedAt: 2, agent: 'a1' })]);
    expect(again.activeCount).toBe(2);
    expect(again.unfinished()).toEqual([{ ...run('000000000c', { status: 'failed', reason: 'exit code 1', endedAt: 3 }), duties: { logsKept: true, announced: false, removed: false } }]);
    // What /metrics reads at each scrape (pushfleet_job_runs).
    expect(again.statusCounts()).toEqual({ pending: 1, running: 1, failed: 1 });
  });

  it('a run recorded already finished (refused by its plan) has only its announcement left', () => {
    const store = new RunStore(new Database(':memory:'));
    store.insert([run('000000000a', { status: 'failed', reason: 'skipped', endedAt: 1 })]);
    expect(store.get('000000000a')!.duties).toEqual({ logsKept: true, announced: false, removed: true });
  });

  it('forgets the oldest runs past the history, only those with nothing left to do', () => {
    const store = new RunStore(new Database(':memory:'));
    for (const id of ['0000000001', '0000000002', '0000000003', '0000000004']) {
      store.insert([run(id, { status: 'succeeded', endedAt: 2 })]);
      if (id !== '0000000001') for (const duty of ['logsKept', 'announced', 'removed'] as const) store.done(id, duty);
    }
    expect(store.prune(2).map((r) => r.id)).toEqual(['0000000002']);
    expect(store.recent(10).map((r) => r.id)).toEqual(['0000000004', '0000000003', '0000000001']);
  });

  it('knows a redelivery only by the newest run under its packet id, with the same topic and payload digest', () => {
    const store = new RunStore(new Database(':memory:'));
    store.insert([run('0000000001')], { messageId: 5, digest: 'd1' });
    expect(store.redelivered('t', { messageId: 5, digest: 'd1' })).toBe('0000000001');
    expect(store.redelivered('other', { messageId: 5, digest: 'd1' })).toBeUndefined();
    store.insert([run('0000000002')], { messageId: 5, digest: 'd2' });
    expect(store.redelivered('t', { messageId: 5, digest: 'd1' })).toBeUndefined();
  });

  it('tells of each run written, and pages the newest first, of one job or all', () => {
    const changed: string[] = [];
    const store = new RunStore(new Database(':memory:'), (id) => changed.push(id));
    store.insert([run('0000000001'), run('0000000002', { job: 'k' })], undefined, [run('0000000000', { status: 'cancelled' })]);
    store.update(run('0000000001', { status: 'running', startedAt: 2 }));
    expect(changed).toEqual(['0000000001', '0000000002', '0000000000', '0000000001']);
    store.insert([run('0000000003')]);
    expect(store.recent(1, undefined, 1).map((r) => r.id)).toEqual(['0000000002']);
    expect(store.recent(10, 'j', 1).map((r) => r.id)).toEqual(['0000000001']);
    expect([store.count(), store.count('j'), store.count('none')]).toEqual([3, 2, 0]);
  });
});

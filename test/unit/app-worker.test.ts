import { describe, expect, it } from 'vitest';
import type { UpdateResult } from '../../agent/apply-update.js';
import { AppWorker, type Target } from '../../agent/app-worker.js';

const sha = (c: string) => c.repeat(40);
let n = 0;
const target = (c: string, at = n++): Target => ({ sha: sha(c), ref: 'refs/heads/main', deliveryId: `d-${at}-${c}`, receivedAt: new Date(1_000_000 + at * 1000).toISOString() });

/** A worker whose updates finish only when the test says so. */
function controlled(initial: string | null = null, outcome: (t: Target) => UpdateResult['state'] = () => 'deployed') {
  const applied: string[] = [];
  let active = 0;
  let maxActive = 0;
  const gates: (() => void)[] = [];
  const worker = new AppWorker(initial, {
    apply: async (t) => {
      applied.push(t.sha[0]!);
      maxActive = Math.max(maxActive, ++active);
      await new Promise<void>((r) => gates.push(r));
      active--;
      const state = outcome(t);
      return { state, sha: state === 'deployed' ? t.sha : initial, previousSha: initial, error: null, durations: {} };
    },
    onStart: () => {},
    onDone: () => {},
  });
  const finishOne = async () => {
    while (!gates.length) await new Promise((r) => setImmediate(r));
    gates.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { worker, applied, finishOne, maxActive: () => maxActive };
}

describe('AppWorker', () => {
  it('never overlaps updates and collapses queued pushes to the newest', async () => {
    const { worker, applied, finishOne, maxActive } = controlled();
    worker.offer(target('a'));
    worker.offer(target('b'));
    worker.offer(target('c'));
    worker.offer(target('d'));
    await finishOne();
    await finishOne();
    await worker.idle();
    expect(applied).toEqual(['a', 'd']);
    expect(maxActive()).toBe(1);
    expect(worker.sha).toBe(sha('d'));
  });

  it('does nothing for a SHA already deployed', async () => {
    const { worker, applied } = controlled(sha('a'));
    expect(worker.offer(target('a'))).toBe(false);
    await worker.idle();
    expect(applied).toEqual([]);
  });

  it('ignores a push older than one already seen', async () => {
    const { worker, applied, finishOne } = controlled();
    const newer = target('n', 100);
    const older = target('o', 50);
    worker.offer(newer);
    expect(worker.offer(older)).toBe(false);
    await finishOne();
    await worker.idle();
    expect(applied).toEqual(['n']);
  });

  it('does not retry a delivery that already failed, but does retry a new push of it', async () => {
    const { worker, applied, finishOne } = controlled(sha('z'), () => 'rolled-back');
    const bad = target('b');
    worker.offer(bad);
    await finishOne();
    await worker.idle();
    expect(worker.offer({ ...bad })).toBe(false); // the same retained head, redelivered on reconnect
    await worker.idle();
    expect(applied).toEqual(['b']);
    worker.offer({ ...target('b'), deliveryId: 'a-new-push' });
    await finishOne();
    await worker.idle();
    expect(applied).toEqual(['b', 'b']);
  });
});

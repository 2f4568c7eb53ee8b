import { describe, expect, it } from 'vitest';
import { AppRunner, type Clock } from '../../agent/app-runner.js';
import { AppConfig } from '../../agent/config.js';
import { emptyJournal, type Journal, type Target } from '../../agent/journal.js';
import type { ExecContext, Executors } from '../../agent/step-executors.js';
import { StepError } from '../../agent/step-error.js';
import type { WorkKind, WorkStep } from '../../agent/update-plan.js';
import { createLogger } from '../../src/shared/logger.js';
import type { AppState } from '../../src/shared/messages.js';

const sha = (c: string) => c.repeat(40);
let n = 0;
const target = (c: string, at = n++): Target => {
  const deliveryId = `d-${at}-${c}`;
  return { sha: sha(c), ref: 'refs/heads/main', deliveryId, receivedAt: new Date(1_000_000 + at * 1000).toISOString(), direct: false, key: deliveryId };
};
const app = AppConfig.parse({ name: 'web', repo: 'acme/web', branch: 'main', path: '/srv/web', remote: '/git/web.git', update: [['make']], restart: ['restart'], retryDelay: 1, retryMaxDelay: 8 });

/** A fake clock: sleeps pass at once (and are recorded), time moves only through them. */
function fakeClock(): Clock & { slept: number[] } {
  let t = 1_000_000;
  const slept: number[] = [];
  return { slept, now: () => t, random: () => 1, sleep: async (ms) => void (slept.push(ms), (t += ms)) };
}

/**
 * A runner over fake executors: every step is logged as "kind sha"; `block` makes a step wait
 * until the test lets it go; `fail` makes it throw (transient for fetch unless permanent).
 */
function runner(initial: Journal = emptyJournal('web', '/srv/web', null), opts: { block?: (s: WorkStep) => boolean; fail?: (s: WorkStep) => StepError | undefined; save?: (j: Journal) => Promise<void>; track?: boolean } = {}) {
  const steps: string[] = [];
  const saved: Journal[] = [];
  const states: AppState[] = [];
  const gates: (() => void)[] = [];
  let active = 0;
  let maxActive = 0;
  const exec = (kind: WorkKind) => ({
    timeoutMs: 1000,
    retry: kind === 'fetch' ? ('backoff' as const) : ('never' as const),
    run: async (s: WorkStep, ctx: ExecContext) => {
      steps.push(`${kind} ${s.sha[0]}`);
      if (opts.track) await ctx.track!(process.pid, kind); // as a step's command does before it runs
      maxActive = Math.max(maxActive, ++active);
      try {
        if (opts.block?.(s)) await new Promise<void>((r) => gates.push(r));
        const err = opts.fail?.(s);
        if (err) throw err;
      } finally {
        active--;
      }
    },
  });
  const executors: Executors = { fetch: exec('fetch'), verify: exec('verify'), checkout: exec('checkout'), update: exec('update'), restart: exec('restart'), health: exec('health') };
  const clock = fakeClock();
  const r = new AppRunner({
    app,
    agentId: 'node-1',
    log: createLogger('test', 'silent'),
    journal: initial,
    store: { save: opts.save ?? (async (j) => void saved.push(structuredClone(j))) },
    executors,
    gate: null,
    publish: (s) => states.push(s),
    clock,
  });
  const release = async () => {
    while (!gates.length) await new Promise((res) => setImmediate(res));
    gates.shift()!();
  };
  return { r, steps, saved, states, clock, release, maxActive: () => maxActive };
}

describe('AppRunner', () => {
  it("records each step's process group in the journal before it runs and clears it when the step ends", async () => {
    const t = runner(undefined, { track: true });
    t.r.offer(target('b'));
    await t.r.idle();
    const tracked = t.saved.filter((j) => j.running).map((j) => [j.running!.step, j.running!.pgid, j.running!.argv0, j.active?.step]);
    expect(tracked).toEqual(['fetch', 'checkout', 'update', 'restart'].map((k, i) => [k, process.pid, k, i]));
    // A step's end is written with the next step's process record: each names the step it is at, the ones before timed.
    expect(t.saved.filter((j) => j.running).map((j) => Object.keys(j.active!.durations))).toEqual([[], ['fetch'], ['fetch', 'checkout'], ['fetch', 'checkout', 'update']]);
    expect(t.saved.at(-1)).toMatchObject({ running: null, last: { state: 'deployed', durations: { fetch: 0, checkout: 0, update: 0, restart: 0 } } });
  });

  it('writes the journal once per process and once for the outcome, not again at each begin and step end', async () => {
    const t = runner(undefined, { track: true });
    t.r.offer(target('b'));
    await t.r.idle();
    expect(t.saved.map((j) => j.running?.step ?? j.last?.state)).toEqual(['fetch', 'checkout', 'update', 'restart', 'deployed']);
    // Shown as before: once begun, once after each step but the last, then the outcome.
    expect(t.states.map((s) => s.state)).toEqual(['updating', 'updating', 'updating', 'updating', 'deployed']);
  });

  it('writes its intent to the journal before the first process of the update runs', async () => {
    let journalAtFetch: Journal | undefined;
    const t = runner(undefined, { block: (s) => s.kind === 'fetch', track: true });
    t.r.offer(target('b'));
    await t.release().then(() => (journalAtFetch = t.saved.at(-1)));
    await t.r.idle();
    expect(journalAtFetch?.active).toMatchObject({ target: { sha: sha('b') }, phase: 'forward', step: 0 });
    expect(t.saved.at(-1)).toMatchObject({ deployed: { sha: sha('b') }, active: null, last: { state: 'deployed' } });
    expect(t.r.current).toMatchObject({ state: 'deployed', sha: sha('b') });
  });

  it('reports deployed only once restart has run: while updating, sha stays the previous one', async () => {
    const t = runner({ ...emptyJournal('web', '/srv/web', null), deployed: { sha: sha('a'), ref: 'refs/heads/main', at: 0 } }, { block: (s) => s.kind === 'restart' });
    t.r.offer(target('b'));
    await t.release();
    await t.r.idle();
    const beforeRestart = t.states.filter((s) => s.state === 'updating');
    expect(beforeRestart.length).toBeGreaterThan(0);
    expect(beforeRestart.every((s) => s.sha === sha('a') && s.targetSha === sha('b'))).toBe(true);
    expect(t.states.at(-1)).toMatchObject({ state: 'deployed', sha: sha('b') });
  });

  it('never overlaps updates and collapses queued pushes to the newest', async () => {
    const t = runner(undefined, { block: (s) => s.kind === 'update' });
    t.r.offer(target('a'));
    while (!t.steps.includes('update a')) await new Promise((res) => setImmediate(res));
    t.r.offer(target('b'));
    t.r.offer(target('c'));
    t.r.offer(target('d'));
    await t.release();
    await t.release();
    await t.r.idle();
    expect(t.steps.filter((s) => s.startsWith('restart'))).toEqual(['restart a', 'restart d']);
    expect(t.maxActive()).toBe(1);
    expect(t.r.current.sha).toBe(sha('d'));
  });

  it('drops an update still fetching (nothing touched) for a newer push', async () => {
    const t = runner(undefined, { block: (s) => s.kind === 'fetch' && s.sha === sha('a') });
    t.r.offer(target('a'));
    while (!t.steps.includes('fetch a')) await new Promise((res) => setImmediate(res));
    t.r.offer(target('b'));
    await t.release();
    await t.r.idle();
    expect(t.steps).toEqual(['fetch a', 'fetch b', 'checkout b', 'update b', 'restart b']);
  });

  it('stays on a pin whatever is pushed, and follows the newest push again once unpinned', async () => {
    const t = runner();
    t.r.pin({ ...target('p'), direct: true });
    await t.r.idle();
    t.r.offer(target('b'));
    await t.r.idle();
    expect(t.r.current).toMatchObject({ state: 'deployed', sha: sha('p'), pinnedSha: sha('p') });
    // Unpinned, then offered the heads again at once (as the agent does), before the loop has ended.
    t.r.pin(null);
    t.r.offer(target('b'));
    await t.r.idle();
    expect(t.r.current).toMatchObject({ state: 'deployed', sha: sha('b'), pinnedSha: null });
  });

  it('does nothing for a SHA already deployed, or for a push older than one already seen', async () => {
    const t = runner({ ...emptyJournal('web', '/srv/web', null), deployed: { sha: sha('a'), ref: 'refs/heads/main', at: 0 } });
    t.r.offer(target('a'));
    await t.r.idle();
    expect(t.steps).toEqual([]);
    const newer = target('n', 100);
    t.r.offer(newer);
    expect(t.r.offer(target('o', 50))).toBe(false);
    await t.r.idle();
    expect(t.steps.filter((s) => s.startsWith('restart'))).toEqual(['restart n']);
  });

  it('does not retry a failed delivery by itself, but does for a new push of it and for a retry request', async () => {
    const t = runner({ ...emptyJournal('web', '/srv/web', null), deployed: { sha: sha('z'), ref: 'refs/heads/main', at: 0 } }, { fail: (s) => (s.kind === 'restart' && s.sha === sha('b') ? new StepError('restart', 'exit 1') : undefined) });
    const bad = target('b');
    t.r.offer(bad);
    await t.r.idle();
    expect(t.r.current).toMatchObject({ state: 'rolled-back', sha: sha('z'), targetSha: sha('b') });
    t.r.offer({ ...bad }); // the same retained head, redelivered on reconnect
    await t.r.idle();
    expect(t.steps.filter((s) => s === 'restart b')).toHaveLength(1);

    t.r.retry('r1');
    await t.r.idle();
    expect(t.steps.filter((s) => s === 'restart b')).toHaveLength(2);
    expect(t.states.find((s) => s.retryRequest?.id === 'r1')?.retryRequest).toMatchObject({ accepted: true });

    t.r.offer({ ...target('b'), deliveryId: 'a-new-push', key: 'a-new-push' });
    await t.r.idle();
    expect(t.steps.filter((s) => s === 'restart b')).toHaveLength(3);
  });

  it('answers a retry request with nothing to retry when the last update worked', async () => {
    const t = runner();
    t.r.offer(target('b'));
    await t.r.idle();
    t.r.retry('r2');
    await t.r.idle();
    expect(t.r.current.retryRequest).toMatchObject({ id: 'r2', accepted: false, detail: expect.stringMatching(/^nothing to retry/) });
    expect(t.steps.filter((s) => s.startsWith('fetch'))).toHaveLength(1);
  });

  it('retries a transient fetch failure with backoff, reporting retrying, attempt and next try', async () => {
    let fetches = 0;
    const t = runner(undefined, { fail: (s) => (s.kind === 'fetch' && ++fetches <= 3 ? new StepError('fetch', 'remote down') : undefined) });
    t.r.offer(target('b'));
    await t.r.idle();
    const retrying = t.states.filter((s) => s.state === 'retrying');
    expect(retrying.map((s) => s.retrying?.attempt)).toEqual([2, 3, 4]);
    expect(retrying[0]).toMatchObject({ lastError: { step: 'fetch', message: 'remote down' }, retrying: { step: 'fetch', nextAt: new Date(1_000_000 + 1000).toISOString() } });
    expect(t.clock.slept).toEqual([1000, 2000, 4000]);
    expect(t.r.current).toMatchObject({ state: 'deployed', sha: sha('b'), retrying: null, lastError: null });
  });

  it('cuts a backoff short on a retry request', async () => {
    let fetches = 0;
    const t = runner(undefined, { fail: (s) => (s.kind === 'fetch' && ++fetches === 1 ? new StepError('fetch', 'remote down') : undefined) });
    t.clock.sleep = (_ms, signal) => new Promise<void>((res) => signal.addEventListener('abort', () => res()));
    t.r.offer(target('b'));
    while (t.r.current.state !== 'retrying') await new Promise((res) => setImmediate(res));
    t.r.retry('now');
    await t.r.idle();
    expect(t.states.find((s) => s.retryRequest?.id === 'now')?.retryRequest).toMatchObject({ accepted: true, detail: expect.stringMatching(/again now \(attempt 2\)/) });
    expect(t.r.current).toMatchObject({ state: 'deployed', sha: sha('b') });
  });

  it('does not retry a fetch that failed for good', async () => {
    const t = runner(undefined, { fail: (s) => (s.kind === 'fetch' ? new StepError('fetch', 'commit not on the remote', '', true) : undefined) });
    t.r.offer(target('b'));
    await t.r.idle();
    expect(t.steps).toEqual(['fetch b']);
    expect(t.r.current).toMatchObject({ state: 'failed', lastError: { step: 'fetch' } });
  });

  it('stops waiting for a retry when stopped, leaving the update in the journal for the next start', async () => {
    const t = runner(undefined, { fail: (s) => (s.kind === 'fetch' ? new StepError('fetch', 'remote down') : undefined) });
    t.clock.sleep = (_ms, signal) => new Promise<void>((res) => signal.addEventListener('abort', () => res()));
    t.r.offer(target('b'));
    while (t.r.current.state !== 'retrying') await new Promise((res) => setImmediate(res));
    await t.r.stop();
    expect(t.saved.at(-1)?.active).toMatchObject({ target: { sha: sha('b') }, attempt: 2 });
  });

  it('holds a journal write failure: nothing runs until the journal can be written', async () => {
    const saves: boolean[] = [];
    const t = runner(undefined, {
      track: true,
      save: async () => {
        const failing = saves.length < 2;
        saves.push(failing);
        if (failing) throw new Error('ENOSPC: no space left on device');
      },
    });
    t.r.offer(target('b'));
    await t.r.idle();
    expect(t.states.some((s) => s.lastError?.message.includes('cannot write the journal: ENOSPC'))).toBe(true);
    expect(saves.slice(0, 3)).toEqual([true, true, false]);
    expect(t.clock.slept).toEqual([1000, 2000]);
    expect(t.steps[0]).toBe('fetch b');
    expect(t.r.current.state).toBe('deployed');
  });
});

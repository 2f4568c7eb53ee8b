import { describe, expect, it } from 'vitest';
import { emptyJournal, Journal as JournalSchema, type Journal, type Target } from '../../agent/journal.js';
import { grantLost, held, record, recover, type StepResult } from '../../agent/journal-transitions.js';
import { plan, type Shape, type Step } from '../../agent/update-plan.js';

const OLD = 'a'.repeat(40);
const NEW = 'b'.repeat(40);
const SHAPE: Shape = { updates: 1, health: true };
const target = (sha: string, key = `push-${sha[0]}`): Target => ({ sha, ref: 'refs/heads/main', deliveryId: key, receivedAt: '2026-01-01T00:00:00.000Z', direct: false, key });
const deployedOn = (sha: string | null): Journal => ({ ...emptyJournal('web', '/srv/web', null), deployed: sha ? { sha, ref: 'refs/heads/main', at: 0 } : null });
const label = (s: Step) => ('sha' in s ? `${s.kind} ${s.sha[0]}` : s.kind);
const ok = (ms = 10): StepResult => ({ ok: true, ms });
const fail = (step: 'fetch' | 'update' | 'restart' | 'health' | 'checkout', transient = false): StepResult => ({ ok: false, ms: 10, error: { step, message: `${step} broke`, outputTail: 'some output' }, transient });

/**
 * Plans, "performs" the first step (its result from `outcome`), records it and plans again, as
 * the runner does, until nothing is left; returns the steps taken and the final journal.
 */
function drive(j: Journal, t: Target | null, outcome: (s: Step) => StepResult = () => ok(), opts: { shape?: Shape; needsGrant?: boolean; maxSteps?: number } = {}) {
  const taken: string[] = [];
  let now = 1000;
  for (let i = 0; i < (opts.maxSteps ?? 50); i++) {
    const step = plan({ journal: j, target: t, granted: null, needsGrant: () => opts.needsGrant ?? false, shape: opts.shape ?? SHAPE, now })[0];
    if (!step) break;
    taken.push(label(step));
    if (step.kind === 'wait') {
      now = step.until;
      continue;
    }
    if (step.kind === 'admit') break;
    const r = step.kind === 'begin' || step.kind === 'abandon' ? ok(0) : outcome(step);
    now += r.ms;
    j = record(j, step, r, { now, shape: opts.shape ?? SHAPE, retryDelayMs: (n) => 1000 * 2 ** (n - 1) });
  }
  return { taken, journal: j };
}

describe('plan and record: one update', () => {
  it('begins (journal first), then fetches, checks out, updates, restarts and checks health, in that order', () => {
    const { taken, journal } = drive(deployedOn(OLD), target(NEW));
    expect(taken).toEqual(['begin', 'fetch b', 'checkout b', 'update b', 'restart b', 'health b']);
    expect(journal.deployed?.sha).toBe(NEW);
    expect(journal.active).toBeNull();
    expect(journal.last).toMatchObject({ state: 'deployed', target: { sha: NEW }, error: null, durations: { fetch: 10, checkout: 10, update: 10, restart: 10, health: 10, total: 50 } });
  });

  it('rolls back to the previous SHA when the health check fails', () => {
    const { taken, journal } = drive(deployedOn(OLD), target(NEW), (s) => (s.kind === 'health' && 'sha' in s && s.sha === NEW ? fail('health') : ok()));
    expect(taken.slice(6)).toEqual(['checkout a', 'update a', 'restart a', 'health a']);
    expect(journal.deployed?.sha).toBe(OLD);
    expect(journal.last).toMatchObject({ state: 'rolled-back', target: { sha: NEW }, error: { step: 'health' } });
  });

  it('rolls back when an update command fails, keeping its output tail, timing the rollback as one', () => {
    const { taken, journal } = drive(deployedOn(OLD), target(NEW), (s) => (label(s) === 'update b' ? fail('update') : ok()));
    expect(taken).toEqual(['begin', 'fetch b', 'checkout b', 'update b', 'checkout a', 'update a', 'restart a', 'health a']);
    expect(journal.last).toMatchObject({ state: 'rolled-back', error: { step: 'update', outputTail: 'some output' } });
    expect(journal.last?.durations.rollback).toBe(40);
  });

  it('changes nothing when the fetch fails for good', () => {
    const { taken, journal } = drive(deployedOn(OLD), target(NEW), (s) => (s.kind === 'fetch' ? fail('fetch') : ok()));
    expect(taken).toEqual(['begin', 'fetch b']);
    expect(journal.deployed?.sha).toBe(OLD);
    expect(journal.last).toMatchObject({ state: 'failed', error: { step: 'fetch' } });
  });

  it('retries a transient fetch failure after a growing backoff, then goes on', () => {
    let fetches = 0;
    const j = drive(deployedOn(OLD), target(NEW), (s) => (s.kind === 'fetch' && ++fetches <= 2 ? fail('fetch', true) : ok()));
    expect(j.taken).toEqual(['begin', 'fetch b', 'wait', 'fetch b', 'wait', 'fetch b', 'checkout b', 'update b', 'restart b', 'health b']);
    expect(j.journal.last?.state).toBe('deployed');
  });

  it('records the retry: the try that runs next and when', () => {
    const begun = record(deployedOn(OLD), { kind: 'begin', target: target(NEW), previousSha: OLD }, ok(0), { now: 0, shape: SHAPE, retryDelayMs: () => 0 });
    const step = plan({ journal: begun, target: target(NEW), granted: null, needsGrant: () => false, shape: SHAPE, now: 0 })[0]!;
    const after = record(begun, step, fail('fetch', true), { now: 5000, shape: SHAPE, retryDelayMs: (n) => n * 7000 });
    expect(after.active).toMatchObject({ attempt: 2, retryAt: 12_000, error: { step: 'fetch' } });
    expect(plan({ journal: after, target: target(NEW), granted: null, needsGrant: () => false, shape: SHAPE, now: 6000 })[0]).toEqual({ kind: 'wait', until: 12_000 });
  });

  it('reports failed, not rolled-back, when there is nothing to roll back to; nothing counts as deployed', () => {
    const { journal } = drive(deployedOn(null), target(NEW), (s) => (s.kind === 'restart' ? fail('restart') : ok()));
    expect(journal.last).toMatchObject({ state: 'failed', error: { step: 'restart' } });
    expect(journal.deployed).toBeNull();
  });

  it('rolls a first update back to the working copy it found (baseline), which then counts as deployed', () => {
    const { taken, journal } = drive({ ...deployedOn(null), baseline: OLD }, target(NEW), (s) => (label(s) === 'health b' ? fail('health') : ok()));
    expect(taken.slice(-4)).toEqual(['checkout a', 'update a', 'restart a', 'health a']);
    expect(journal).toMatchObject({ deployed: { sha: OLD }, baseline: null, last: { state: 'rolled-back' } });
  });

  it('reports failed when the rollback fails too, naming both, and nothing is known to run', () => {
    const { journal } = drive(deployedOn(OLD), target(NEW), (s) => (s.kind === 'restart' ? fail('restart') : ok()));
    expect(journal.last?.state).toBe('failed');
    expect(journal.last?.error?.step).toBe('rollback');
    expect(journal.last?.error?.message).toMatch(/restart failed \(restart broke\); rollback to a{40} failed too at restart/);
    expect(journal.deployed).toBeNull();
  });

  it('runs no health step for an app without a health check', () => {
    expect(drive(deployedOn(OLD), target(NEW), undefined, { shape: { updates: 2, health: false } }).taken).toEqual(['begin', 'fetch b', 'checkout b', 'update b', 'update b', 'restart b']);
  });
});

describe('plan: what to update', () => {
  const input = (j: Journal, t: Target | null, extra: Partial<Parameters<typeof plan>[0]> = {}) => ({ journal: j, target: t, granted: null, needsGrant: () => false, shape: SHAPE, now: 0, ...extra });

  it('does nothing without a target or for the SHA already deployed', () => {
    expect(plan(input(deployedOn(OLD), null))).toEqual([]);
    expect(plan(input(deployedOn(OLD), target(OLD, 'a-new-push')))).toEqual([]);
  });

  it('does not retry a request already attempted, but does a new one (new push, redelivery, pushfleet retry)', () => {
    const failed = drive(deployedOn(OLD), target(NEW, 'd1'), (s) => (label(s) === 'health b' ? fail('health') : ok())).journal;
    expect(failed.last?.state).toBe('rolled-back');
    expect(plan(input(failed, target(NEW, 'd1')))).toEqual([]);
    expect(plan(input(failed, target(NEW, 'retry:r1')))[0]).toMatchObject({ kind: 'begin', previousSha: OLD });
  });

  it('waits for the rollout grant first when the target needs one', () => {
    const t = target(NEW);
    expect(plan(input(deployedOn(OLD), t, { needsGrant: () => true }))[0]).toEqual({ kind: 'admit', target: t, token: null });
  });

  it('begins a granted update even when a newer target arrived meanwhile', () => {
    const granted = target(NEW);
    const newer = target('c'.repeat(40));
    expect(plan(input(deployedOn(OLD), newer, { needsGrant: () => true, granted }))[0]).toEqual({ kind: 'begin', target: granted, previousSha: OLD });
    const begun = record(deployedOn(OLD), { kind: 'begin', target: granted, previousSha: OLD }, ok(0), { now: 0, shape: SHAPE, retryDelayMs: () => 0 });
    expect(plan(input(begun, newer, { needsGrant: () => true, granted }))[0]).toMatchObject({ kind: 'fetch', sha: NEW });
  });

  it('drops an update that touched nothing yet for a newer target, and carries on one that did', () => {
    const begun = record(deployedOn(OLD), { kind: 'begin', target: target(NEW), previousSha: OLD }, ok(0), { now: 0, shape: SHAPE, retryDelayMs: () => 0 });
    const newer = target('c'.repeat(40));
    expect(plan(input(begun, newer))[0]).toMatchObject({ kind: 'abandon' });
    const checkedOut = { ...begun, active: { ...begun.active!, step: 2 } };
    expect(plan(input(checkedOut, newer)).map(label)).toEqual(['update b', 'restart b', 'health b']);
    // Another request for the same SHA (a rollback directive sent again) is this very update: it carries on.
    expect(plan(input(begun, target(NEW, 'rollback:again')))[0]).toMatchObject({ kind: 'fetch', sha: NEW });
  });
});

describe('recover: after the agent was killed', () => {
  const midUpdate = (): Journal => {
    const begun = record(deployedOn(OLD), { kind: 'begin', target: target(NEW), previousSha: OLD }, ok(0), { now: 0, shape: SHAPE, retryDelayMs: () => 0 });
    return { ...begun, active: { ...begun.active!, step: 2 } }; // in the update command
  };

  it('redoes an unfinished update from its first step, and says so', () => {
    const { journal, note } = recover(midUpdate(), NEW, 'redo', SHAPE, 5);
    expect(journal.deployed?.sha).toBe(OLD);
    expect(journal.active).toMatchObject({ phase: 'forward', step: 0, interrupted: { step: 'update', phase: 'forward', action: 'redo', at: 5 } });
    expect(note).toMatch(/interrupted at update/);
    const { taken, journal: done } = drive(journal, target(NEW));
    expect(taken).toEqual(['fetch b', 'checkout b', 'update b', 'restart b', 'health b']);
    expect(done.last).toMatchObject({ state: 'deployed', interrupted: { action: 'redo' } });
  });

  it('rolls an unfinished update back with onInterrupted: rollback', () => {
    const { journal } = recover(midUpdate(), NEW, 'rollback', SHAPE, 5);
    const { taken, journal: done } = drive(journal, target(NEW));
    expect(taken).toEqual(['checkout a', 'update a', 'restart a', 'health a']);
    expect(done).toMatchObject({ deployed: { sha: OLD }, last: { state: 'rolled-back', error: { step: 'update' }, interrupted: { step: 'update', action: 'rollback' } } });
    // The SHA never completed: a new push of it is not skipped.
    expect(plan({ journal: done, target: target(NEW, 'another-push'), granted: null, needsGrant: () => false, shape: SHAPE, now: 0 })[0]).toMatchObject({ kind: 'begin' });
  });

  it('redoes (nothing to roll back) an update killed while fetching', () => {
    const fetching = { ...midUpdate(), active: { ...midUpdate().active!, step: 0 } };
    expect(recover(fetching, OLD, 'rollback', SHAPE, 5).journal.active).toMatchObject({ phase: 'forward', step: 0, interrupted: { step: 'fetch', action: 'redo' } });
  });

  it('goes on with the retries of a fetch it was stopped between, without calling it interrupted', () => {
    const waiting = { ...midUpdate(), active: { ...midUpdate().active!, step: 0, attempt: 3, retryAt: 99_000 } };
    const { journal, note } = recover(waiting, OLD, 'rollback', SHAPE, 5);
    expect(journal.active).toMatchObject({ phase: 'forward', step: 0, attempt: 3, retryAt: null, interrupted: null });
    expect(note).toMatch(/trying fetch of b{12} again \(attempt 3\)/);
  });

  it('does not take a deployed SHA the working copy is no longer on', () => {
    expect(recover(deployedOn(OLD), OLD, 'redo', SHAPE, 0).journal.deployed?.sha).toBe(OLD);
    const moved = recover(deployedOn(OLD), NEW, 'redo', SHAPE, 0);
    expect(moved.journal).toMatchObject({ deployed: null, baseline: NEW });
    expect(moved.note).toMatch(/not on the deployed/);
  });
});

describe('the rollout admission across a restart', () => {
  const TOKEN = 'tok-1';
  const t = target(NEW);
  const ctx = { now: 0, shape: SHAPE, retryDelayMs: () => 0 };
  const input = (j: Journal, extra: Partial<Parameters<typeof plan>[0]> = {}) => ({ journal: j, target: t, granted: null, needsGrant: () => true, shape: SHAPE, now: 0, ...extra });
  const admitted = (j: Journal): Journal => ({ ...j, admission: { target: t, token: TOKEN } });
  /** Admitted, begun and in its update command when the agent was killed; then recovered. */
  const interrupted = (onInterrupted: 'redo' | 'rollback' = 'redo') => {
    const begun = record(admitted(deployedOn(OLD)), { kind: 'begin', target: t, previousSha: OLD }, ok(0), ctx);
    return recover({ ...begun, active: { ...begun.active!, step: 2 } }, NEW, onInterrupted, SHAPE, 5).journal;
  };

  it('takes back the registration it journaled instead of registering afresh, before and after the update began', () => {
    expect(plan(input(admitted(deployedOn(OLD))))[0]).toEqual({ kind: 'admit', target: t, token: TOKEN });
    const steps = plan(input(interrupted()));
    expect(steps[0]).toEqual({ kind: 'admit', target: t, token: TOKEN });
    // Then the redo from its first step, under the grant taken back.
    expect(steps.slice(1).map(label)).toEqual(['fetch b', 'checkout b', 'update b', 'restart b', 'health b']);
    expect(plan(input(interrupted(), { granted: t })).map(label)).toEqual(['fetch b', 'checkout b', 'update b', 'restart b', 'health b']);
  });

  it('takes the grant back for a rollback on restart too, so its outcome reaches the rollout', () => {
    expect(plan(input(interrupted('rollback')))[0]).toEqual({ kind: 'admit', target: t, token: TOKEN });
  });

  it('registers afresh for another target, and takes nothing back where no grant is needed', () => {
    const newer = target('c'.repeat(40));
    expect(plan(input(admitted(deployedOn(OLD)), { target: newer }))[0]).toEqual({ kind: 'admit', target: newer, token: null });
    expect(plan(input(interrupted(), { needsGrant: () => false }))[0]).toMatchObject({ kind: 'fetch' });
  });

  it('keeps the admission through the update and its outcome, then gives the slot back (again after a restart) before anything else', () => {
    const begun = record(admitted(deployedOn(OLD)), { kind: 'begin', target: t, previousSha: OLD }, ok(0), ctx);
    expect(begun.admission).toEqual({ target: t, token: TOKEN });
    const deployed = drive(begun, t).journal;
    expect(deployed).toMatchObject({ deployed: { sha: NEW }, admission: { token: TOKEN }, last: { state: 'deployed' } });
    const newer = target('c'.repeat(40));
    expect(plan(input(deployed, { target: newer }))).toEqual([{ kind: 'settle', target: t, finished: true }]);
    const rolledBack = drive(begun, t, (s) => (s.kind === 'health' && 'sha' in s && s.sha === NEW ? fail('health') : ok())).journal;
    expect(plan(input(rolledBack))).toEqual([{ kind: 'settle', target: t, finished: false }]);
    // Given back (admission forgotten), nothing is left for this target.
    expect(plan(input({ ...deployed, admission: null }))).toEqual([]);
    expect(held(admitted(deployedOn(OLD)), t, 0).admission).toBeNull();
  });

  it('rolls an update back when its grant is gone, holds one with nowhere to go back to, and lets a rollback finish', () => {
    // recover() restarted the phase at its fetch: the killed run's checkout may have moved the working copy all the same.
    const back = grantLost(interrupted(), 'the hub took back the slot', SHAPE, 9);
    expect(back.admission).toBeNull();
    expect(back.active).toMatchObject({ phase: 'rollback', step: 0, failure: { step: 'update', message: expect.stringMatching(/no longer counts this host \(the hub took back the slot\); rolled back to a{12}/) } });
    expect(drive(back, t).journal).toMatchObject({ deployed: { sha: OLD }, admission: null, last: { state: 'rolled-back', target: { sha: NEW } } });
    const first = { ...interrupted(), deployed: null, active: { ...interrupted().active!, previousSha: null } };
    expect(grantLost(first, 'gone', SHAPE, 9)).toMatchObject({ active: null, admission: null, deployed: null, baseline: null, last: { state: 'held', target: { sha: NEW } } });
    const rollingBack = interrupted('rollback');
    expect(grantLost(rollingBack, 'gone', SHAPE, 9)).toEqual({ ...rollingBack, admission: null });
  });

  it('reads a journal written before admissions existed', () => {
    const { admission: _gone, ...old } = deployedOn(OLD);
    expect(JournalSchema.parse(old).admission).toBeNull();
  });
});

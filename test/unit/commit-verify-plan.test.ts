import { describe, expect, it } from 'vitest';
import { describeApp } from '../../agent/app-state.js';
import { AppConfig } from '../../agent/config.js';
import { emptyJournal, type Journal, type Target } from '../../agent/journal.js';
import { record, recover, type StepResult } from '../../agent/journal-transitions.js';
import { plan, type Shape, type Step } from '../../agent/update-plan.js';

const OLD = 'a'.repeat(40);
const NEW = 'b'.repeat(40);
const SHAPE: Shape = { updates: 1, health: false, verify: true };
const target: Target = { sha: NEW, ref: 'refs/heads/main', deliveryId: 'd1', receivedAt: '2026-01-01T00:00:00.000Z', direct: false, key: 'd1' };
const deployed: Journal = { ...emptyJournal('web', '/srv/web', null), deployed: { sha: OLD, ref: 'refs/heads/main', at: 0 } };
const refusedResult: StepResult = { ok: false, ms: 5, error: { step: 'verify', message: 'refused: unsigned (no signature)', outputTail: '' }, transient: false, refused: { reason: 'unsigned', detail: 'no signature' } };
const label = (s: Step) => ('sha' in s ? `${s.kind} ${s.sha[0]}` : s.kind);

/** Runs the plan to its end, each step's result from `outcome`, as the runner does. */
function drive(j: Journal, outcome: (s: Step) => StepResult) {
  const taken: string[] = [];
  for (let now = 1; ; now++) {
    const step = plan({ journal: j, target, granted: null, needsGrant: () => false, shape: SHAPE, now })[0];
    if (!step) return { taken, journal: j };
    taken.push(label(step));
    j = record(j, step, step.kind === 'begin' ? { ok: true, ms: 0 } : outcome(step), { now, shape: SHAPE, retryDelayMs: () => 0 });
  }
}

describe('verify: the signature check between fetch and checkout', () => {
  it('runs after the fetch and before anything touches the working copy', () => {
    expect(drive(deployed, () => ({ ok: true, ms: 1 })).taken).toEqual(['begin', 'fetch b', 'verify b', 'checkout b', 'update b', 'restart b']);
  });

  it('a refused commit ends the update as failed with the refusal, still on the deployed SHA: no checkout, no rollback, no retry', () => {
    const { taken, journal } = drive(deployed, (s) => (s.kind === 'verify' ? refusedResult : { ok: true, ms: 1 }));
    expect(taken).toEqual(['begin', 'fetch b', 'verify b']);
    expect(journal.deployed?.sha).toBe(OLD);
    expect(journal.last).toMatchObject({ state: 'failed', target: { sha: NEW }, error: { step: 'verify' }, refused: { reason: 'unsigned' } });
    // The same push (a restart's retained head, a redelivery with the same key) is not tried again.
    expect(plan({ journal, target, granted: null, needsGrant: () => false, shape: SHAPE, now: 99 })).toEqual([]);
  });

  it('an agent killed during verify redoes it, never rolls back (nothing was touched)', () => {
    const j: Journal = { ...deployed, active: { target, previousSha: OLD, phase: 'forward', step: 1, attempt: 1, retryAt: null, error: null, failure: null, interrupted: null, startedAt: 0, durations: {} } };
    const { journal } = recover(j, OLD, 'rollback', SHAPE, 5);
    expect(journal.active).toMatchObject({ phase: 'forward', step: 0, interrupted: { step: 'verify', action: 'redo' } });
  });

  it('a rollback does not verify again: the previous SHA was verified when it was deployed', () => {
    const { taken } = drive(deployed, (s) => (s.kind === 'restart' && 'sha' in s && s.sha === NEW ? { ok: false, ms: 1, error: { step: 'restart', message: 'exit 1', outputTail: '' }, transient: false } : { ok: true, ms: 1 }));
    expect(taken).toEqual(['begin', 'fetch b', 'verify b', 'checkout b', 'update b', 'restart b', 'checkout a', 'update a', 'restart a']);
  });

  it('the state message carries the refusal while nothing newer is under way', () => {
    const app = AppConfig.parse({ name: 'web', repo: 'acme/web', branch: 'main', path: '/srv/web', restart: ['true'] });
    const view = { admitting: null, pinnedSha: null, journalError: null, refusedHead: null, retryRequest: null };
    const { journal } = drive(deployed, (s) => (s.kind === 'verify' ? refusedResult : { ok: true, ms: 1 }));
    const state = describeApp(app, 'node-1', SHAPE, journal, view, 10);
    expect(state).toMatchObject({ state: 'failed', sha: OLD, targetSha: NEW, refused: { sha: NEW, reason: 'unsigned', detail: 'no signature', at: new Date(journal.last!.at).toISOString() } });
    const next: Journal = { ...journal, active: { target: { ...target, key: 'd2' }, previousSha: OLD, phase: 'forward', step: 0, attempt: 1, retryAt: null, error: null, failure: null, interrupted: null, startedAt: 0, durations: {} } };
    expect(describeApp(app, 'node-1', SHAPE, next, view, 10).refused).toBeNull();
  });
});

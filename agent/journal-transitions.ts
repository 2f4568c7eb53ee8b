import type { StepName } from '../src/shared/messages.js';
import type { Active, CommitRefusal, Durations, Failure, Journal, Outcome, Target } from './journal.js';
import { checkoutStep, phaseSteps, type Shape, type Step, type WorkStep } from './update-plan.js';

/**
 * How a step ended; `transient` failures (fetch, clone) are tried again after a backoff;
 * `refused`: the verify step refused the commit.
 */
export type StepResult = { ok: true; ms: number } | { ok: false; ms: number; error: Failure; transient: boolean; refused?: CommitRefusal };

export type RecordContext = { now: number; shape: Shape; retryDelayMs(failures: number): number };

const short = (sha: string | null) => (sha ? sha.slice(0, 12) : 'nothing');

/**
 * The update's outcome; `where` is what runs now (nothing known once a failed update touched the
 * working copy). A rollout admission stays until its slot is given back (the runner's settle), so
 * an agent killed in between still gives it back after its restart.
 */
function finish(j: Journal, a: Active, state: Outcome['state'], error: Failure | null, where: Pick<Journal, 'deployed' | 'baseline'>, now: number, refused?: CommitRefusal): Journal {
  const durations = { ...a.durations, total: now - a.startedAt };
  return { ...j, ...where, active: null, last: { state, target: a.target, error, ...(refused && { refused }), interrupted: a.interrupted, durations, at: now } };
}

const NOTHING_KNOWN = { deployed: null, baseline: null };

/** Forward steps are timed one by one; a rollback's steps together, as "rollback". */
function timed(a: Active, kind: StepName, ms: number): Durations {
  const key = a.phase === 'forward' ? kind : 'rollback';
  return { ...a.durations, [key]: (a.durations[key] ?? 0) + ms };
}

/** The journal after `step` ended with `result`: the next step, a retry, a rollback or the outcome. */
export function record(j: Journal, step: Step, result: StepResult, ctx: RecordContext): Journal {
  const { now } = ctx;
  if (step.kind === 'begin') {
    const active: Active = { target: step.target, previousSha: step.previousSha, phase: 'forward', step: 0, attempt: 1, retryAt: null, error: null, failure: null, interrupted: null, startedAt: now, durations: {} };
    return { ...j, active };
  }
  if (step.kind === 'abandon') return { ...j, active: null, admission: null };
  if (step.kind === 'admit' || step.kind === 'wait' || step.kind === 'settle') return j;
  const a = j.active!;
  const durations = timed(a, (step as WorkStep).kind, result.ms);
  if (result.ok) {
    const next = a.step + 1;
    if (next < phaseSteps(a.phase, ctx.shape).length) return { ...j, active: { ...a, durations, step: next, attempt: 1, retryAt: null, error: null } };
    const done = { ...a, durations };
    if (a.phase === 'forward') return finish(j, done, 'deployed', null, { deployed: { sha: a.target.sha, ref: a.target.ref, at: now }, baseline: null }, now);
    const ref = j.deployed?.sha === a.previousSha ? j.deployed.ref : null;
    return finish(j, done, 'rolled-back', a.failure, { deployed: { sha: a.previousSha!, ref, at: now }, baseline: null }, now);
  }
  if (result.transient) return { ...j, active: { ...a, durations, attempt: a.attempt + 1, retryAt: now + ctx.retryDelayMs(a.attempt), error: result.error } };
  const failed = { ...a, durations };
  if (a.phase === 'rollback') {
    const f = a.failure!;
    const both: Failure = { step: 'rollback', message: `${f.step} failed (${f.message}); rollback to ${a.previousSha} failed too at ${result.error.step}: ${result.error.message}`, outputTail: result.error.outputTail || f.outputTail };
    return finish(j, failed, 'failed', both, NOTHING_KNOWN, now);
  }
  // A fetch that failed for good, or a commit refused by verify, touched nothing: what was deployed still is.
  const touched = a.step >= checkoutStep(ctx.shape);
  if (!touched) return finish(j, failed, 'failed', result.error, j, now, result.refused);
  if (a.previousSha !== null && a.previousSha !== a.target.sha) {
    return { ...j, active: { ...failed, phase: 'rollback', step: 0, attempt: 1, retryAt: null, error: null, failure: result.error } };
  }
  return finish(j, failed, 'failed', result.error, NOTHING_KNOWN, now);
}

/** A rollout cancelled the target before anything began: the app stays where it is. */
export function held(j: Journal, target: Target, now: number): Journal {
  return { ...j, admission: null, last: { state: 'held', target, error: null, interrupted: null, durations: {}, at: now } };
}

/**
 * A restarted agent could not take back the grant its unfinished update had (it expired, the
 * rollout was aborted or superseded): the rollout no longer counts this host, so the update does
 * not go on without it. It goes back to the previous SHA, where the rollout believes the host is
 * (a restart cannot tell whether the killed run had moved the working copy, so it always does);
 * without one it is held, nothing known to run. A rollback under way carries on.
 */
export function grantLost(j: Journal, reason: string, shape: Shape, now: number): Journal {
  const a = j.active;
  const rest = { ...j, admission: null };
  if (!a || a.phase === 'rollback') return rest;
  if (a.previousSha === null || a.previousSha === a.target.sha) return held({ ...rest, ...NOTHING_KNOWN, active: null }, a.target, now);
  const at = a.interrupted?.step ?? phaseSteps(a.phase, shape)[a.step]?.kind ?? 'fetch';
  const failure: Failure = { step: at, message: `the rollout no longer counts this host (${reason}); rolled back to ${short(a.previousSha)}`, outputTail: '' };
  return { ...rest, active: { ...a, phase: 'rollback', step: 0, attempt: 1, retryAt: null, error: null, failure } };
}

/** What a restart makes of the journal, with a note for the log when something was recovered. */
export type Recovered = { journal: Journal; note: string | null };

/**
 * On start: an update the previous run left unfinished is redone from its first step, or sent
 * back to the previous SHA (`onInterrupted: rollback`, when there is one and it was touched).
 * Without an update under way, the deployed SHA stands only if the working copy is still on it.
 */
export function recover(j: Journal, head: string | null, onInterrupted: 'redo' | 'rollback', shape: Shape, now: number): Recovered {
  const a = j.active;
  if (!a) {
    if (!j.deployed || j.deployed.sha === head) return { journal: j, note: null };
    return { journal: { ...j, deployed: null, baseline: head }, note: `the working copy is on ${short(head)}, not on the deployed ${short(j.deployed.sha)}: the next head deploys it again` };
  }
  const steps = phaseSteps(a.phase, shape);
  const at = steps[Math.min(a.step, steps.length - 1)]!.kind;
  // Stopped between two tries of a step that failed transiently: nothing ran, nothing was interrupted.
  if (a.retryAt !== null) return { journal: { ...j, active: { ...a, retryAt: null } }, note: `trying ${at} of ${short(a.target.sha)} again (attempt ${a.attempt})` };
  const canRollBack = a.phase === 'forward' && a.step >= checkoutStep(shape) && a.previousSha !== null && a.previousSha !== a.target.sha;
  const fresh = { step: 0, attempt: 1, retryAt: null, error: null };
  if (onInterrupted === 'rollback' && canRollBack) {
    const failure: Failure = { step: at, message: `the agent stopped during ${at} of ${short(a.target.sha)}; rolled back on restart (onInterrupted: rollback)`, outputTail: '' };
    const active: Active = { ...a, ...fresh, phase: 'rollback', failure, interrupted: { step: at, phase: a.phase, action: 'rollback', at: now } };
    return { journal: { ...j, active }, note: `interrupted at ${at}: rolling back to ${short(a.previousSha)}` };
  }
  const active: Active = { ...a, ...fresh, interrupted: { step: at, phase: a.phase, action: 'redo', at: now } };
  return { journal: { ...j, active }, note: `interrupted at ${at} (${a.phase}): running the ${a.phase === 'forward' ? 'update' : 'rollback'} again from its first step` };
}

/** `pushfleet retry` during a backoff: the next try starts now. */
export function retryNow(j: Journal): Journal {
  return j.active && j.active.retryAt !== null ? { ...j, active: { ...j.active, retryAt: null } } : j;
}

import type { Active, Journal, Phase, Target } from './journal.js';

/** The I/O steps of an update, each run by its executor (agent/step-executors.ts). */
export type WorkKind = 'fetch' | 'verify' | 'checkout' | 'update' | 'restart' | 'health';

/**
 * What the app's config makes of an update: how many update commands, whether there is a health
 * check, whether the commit's signature is verified before checkout.
 */
export type Shape = { updates: number; health: boolean; verify?: boolean };

export const shapeOf = (app: { update: readonly unknown[]; health?: unknown; verify?: unknown }): Shape => ({ updates: app.update.length, health: app.health !== undefined, verify: app.verify !== undefined });

/** One step in a phase: `index` says which update command. */
export type PhaseStep = { kind: WorkKind; index: number };

export type WorkStep = PhaseStep & { sha: string; target: Target };

export type Step =
  /**
   * Wait for the rollout's grant (agent/rollout-gate.ts); touches nothing. `token`: the journal's
   * admission, registered again to take back a place (or a slot) the hub holds for this agent;
   * null: a new registration, journaled first.
   */
  | { kind: 'admit'; target: Target; token: string | null }
  /** Give the rollout slot of an update that ended back to the hub (`finished`: it deployed), then forget the admission. */
  | { kind: 'settle'; target: Target; finished: boolean }
  /** Record the intent in the journal: the working copy is touched only after this. */
  | { kind: 'begin'; target: Target; previousSha: string | null }
  /** Drop an update that has touched nothing yet (still fetching) for a newer target. */
  | { kind: 'abandon'; reason: string }
  /** Wait before the next try of a step that failed transiently. */
  | { kind: 'wait'; until: number }
  | WorkStep;

/**
 * forward: fetch → verify (apps with `verify`) → checkout → update commands → restart → health.
 * rollback (back to the previous SHA, which is local already): the same without fetch and verify;
 * that SHA was verified when it was deployed (or is the working copy's HEAD found at the first start).
 */
export function phaseSteps(phase: Phase, shape: Shape): PhaseStep[] {
  const steps: PhaseStep[] = phase === 'forward' ? [{ kind: 'fetch', index: 0 }] : [];
  if (phase === 'forward' && shape.verify) steps.push({ kind: 'verify', index: 0 });
  steps.push({ kind: 'checkout', index: 0 });
  for (let i = 0; i < shape.updates; i++) steps.push({ kind: 'update', index: i });
  steps.push({ kind: 'restart', index: 0 });
  if (shape.health) steps.push({ kind: 'health', index: 0 });
  return steps;
}

/** Index of the forward phase's checkout: the steps before it touch nothing in the working copy. */
export const checkoutStep = (shape: Shape): number => phaseSteps('forward', shape).findIndex((s) => s.kind === 'checkout');

/** The SHA a phase works on. */
export const phaseSha = (a: Pick<Active, 'phase' | 'target' | 'previousSha'>): string => (a.phase === 'forward' ? a.target.sha : a.previousSha!);

function remaining(a: Active, shape: Shape): WorkStep[] {
  const sha = phaseSha(a);
  return phaseSteps(a.phase, shape)
    .slice(a.step)
    .map((s) => ({ ...s, sha, target: a.target }));
}

export type PlanInput = {
  journal: Journal;
  /** What the app should run: the pin, else the newest head or directive (agent/desired-target.ts). */
  target: Target | null;
  /** The target whose rollout grant this agent holds, if any. */
  granted: Target | null;
  /** Whether this target must wait for a rollout's grant. */
  needsGrant(target: Target): boolean;
  shape: Shape;
  now: number;
};

const short = (sha: string) => sha.slice(0, 12);

/**
 * The steps from the current state (the journal) to the desired one (the target), first step
 * first; empty when there is nothing to do. Pure: the runner performs steps[0], records its
 * outcome in the journal and plans again.
 *
 * An update under way is carried on to its end (deployed, rolled back or failed) before a newer
 * target is looked at, unless it has touched nothing yet (fetched at most). A target already
 * deployed, or already attempted (the same request key), gives no steps: a failed SHA is not
 * retried by itself, only by a new push, a redelivery or `pushfleet retry`.
 */
export function plan(input: PlanInput): Step[] {
  const { journal: j, target, shape, now } = input;
  const a = j.active;
  // Ours at the hub, not in hand: a restart between admission and outcome. Taken back first, so
  // the update is redone under the grant it had and its outcome given back to the rollout.
  const reclaim = (t: Target): Step | null =>
    j.admission && j.admission.target.key === t.key && input.granted?.key !== t.key && input.needsGrant(t) ? { kind: 'admit', target: t, token: j.admission.token } : null;
  if (a) {
    const back = reclaim(a.target);
    if (back) return [back, ...remaining(a, shape)];
    // Between steps, the forward phase has touched nothing until its checkout has begun.
    const untouched = a.phase === 'forward' && a.step <= checkoutStep(shape);
    // Another request for the same SHA (a second rollback directive, a redelivery) is this update.
    const replaced = target && target.key !== a.target.key && target.sha !== a.target.sha && input.granted?.key !== a.target.key;
    if (untouched && replaced) return [{ kind: 'abandon', reason: `superseded by ${short(target.sha)} before anything was touched` }];
    const rest = remaining(a, shape);
    return a.retryAt !== null && a.retryAt > now ? [{ kind: 'wait', until: a.retryAt }, ...rest] : rest;
  }
  // Ended, but the rollout has not heard so (the agent stopped before it could tell): that first.
  if (j.admission && j.last?.target.key === j.admission.target.key && input.needsGrant(j.admission.target)) return [{ kind: 'settle', target: j.admission.target, finished: j.last.state === 'deployed' }];
  // A granted update goes first, even when a newer target came meanwhile: the rollout counts on it.
  if (input.granted) return beginSteps(j, input.granted, shape);
  if (!target || target.sha === j.deployed?.sha || target.key === j.last?.target.key) return [];
  const begin = beginSteps(j, target, shape);
  if (!input.needsGrant(target)) return begin;
  return [reclaim(target) ?? { kind: 'admit', target, token: null }, ...begin];
}

function beginSteps(j: Journal, target: Target, shape: Shape): Step[] {
  const forward = phaseSteps('forward', shape).map((s) => ({ ...s, sha: target.sha, target }));
  return [{ kind: 'begin', target, previousSha: j.deployed?.sha ?? j.baseline }, ...forward];
}

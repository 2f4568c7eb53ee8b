import { z } from 'zod';
import { CommitRefusalReason, Sha, StepName } from '../src/shared/messages.js';
import { SemToken } from '../src/shared/contract/semaphore-messages.js';

/**
 * The agent's durable record of one app (one JSON file in its state dir): what it deployed
 * completely, the update it is in the middle of, and how the last one ended. Written before the
 * working copy is touched and after every step, so a restarted agent knows exactly where it was.
 * Times are milliseconds since the epoch.
 */
export const JOURNAL_VERSION = 1;

/** What an update aims for: a push's head, a pin or a rollback directive. */
export const Target = z.object({
  sha: Sha,
  ref: z.string(),
  deliveryId: z.string(),
  receivedAt: z.string(),
  /** The hub sent this SHA itself (a pin or a rollback): no rollout grant is needed. */
  direct: z.boolean(),
  /** Identity of this request: each is attempted once (a new push, a redelivery or `pushfleet retry` brings a new one). */
  key: z.string(),
});
export type Target = z.infer<typeof Target>;

export const Failure = z.object({ step: StepName, message: z.string(), outputTail: z.string() });
export type Failure = z.infer<typeof Failure>;

export const Phase = z.enum(['forward', 'rollback']);
export type Phase = z.infer<typeof Phase>;

export const Interrupted = z.object({
  step: StepName,
  phase: Phase,
  action: z.enum(['redo', 'rollback']),
  at: z.number(),
  /** What the stopped run's step left running, and that it was terminated before anything else ran. */
  leftover: z.string().optional(),
});
export type Interrupted = z.infer<typeof Interrupted>;

const Durations = z.partialRecord(z.enum([...StepName.options, 'total']), z.number().nonnegative());
export type Durations = z.infer<typeof Durations>;

/**
 * A step's process group, recorded before it may run and cleared when it ends, so a restarted
 * agent can stop what a killed one left running. The leader's start time (clock ticks since boot,
 * /proc/<pid>/stat field 22) and the boot id tell this group from a later one with the same id.
 */
export const RunningGroup = z.object({ pgid: z.number().int().positive(), startTime: z.number().int().nonnegative(), bootId: z.string(), step: StepName, argv0: z.string() });
export type RunningGroup = z.infer<typeof RunningGroup>;

/** An update under way: forward to the target, or back to the previous SHA after a failure. */
export const Active = z.object({
  target: Target,
  /** What was deployed when it began: where a rollback goes. */
  previousSha: Sha.nullable(),
  phase: Phase,
  /** Index of the current step in the phase's steps (see phaseSteps). */
  step: z.number().int().nonnegative(),
  /** Which try of the current step this is (1 = the first). */
  attempt: z.number().int().positive(),
  /** Set after a transient failure: the next try starts then. */
  retryAt: z.number().nullable(),
  /** The transient failure being retried. */
  error: Failure.nullable(),
  /** The failure a rollback answers. */
  failure: Failure.nullable(),
  interrupted: Interrupted.nullable(),
  startedAt: z.number(),
  durations: Durations,
});
export type Active = z.infer<typeof Active>;

/** The app's `verify` refused the target's commit (agent/commit-verifier.ts). */
export const CommitRefusal = z.object({ reason: CommitRefusalReason, detail: z.string() });
export type CommitRefusal = z.infer<typeof CommitRefusal>;

export const Outcome = z.object({
  state: z.enum(['deployed', 'failed', 'rolled-back', 'held']),
  target: Target,
  error: Failure.nullable(),
  /** Set on a failed outcome whose commit was refused: it was never checked out. */
  refused: CommitRefusal.optional(),
  interrupted: Interrupted.nullable(),
  durations: Durations,
  at: z.number(),
});
export type Outcome = z.infer<typeof Outcome>;

/**
 * This app's registration in a rollout's semaphore channel, written before it is sent: a
 * restarted agent registers again with the same token, which the hub takes as a repeat, so a slot
 * the hub granted is handed back (its retained go carries the token) instead of being given up.
 */
export const Admission = z.object({ target: Target, token: SemToken });
export type Admission = z.infer<typeof Admission>;

export const Journal = z.object({
  v: z.literal(JOURNAL_VERSION),
  app: z.string(),
  /** The working copy this journal is about; a journal for another path is not taken. */
  path: z.string(),
  /** The last SHA that was fetched, checked out, updated, restarted and passed health. */
  deployed: z.object({ sha: Sha, ref: z.string().nullable(), at: z.number() }).nullable(),
  /** Without anything deployed: the working copy's HEAD found at start, the rollback target of a first update. */
  baseline: Sha.nullable(),
  active: Active.nullable(),
  /** Cleared with the outcome, before the slot is given back; absent in journals from before it existed. */
  admission: Admission.nullable().default(null),
  last: Outcome.nullable(),
  /** The process group of the step running now (none in journals written before this field). */
  running: RunningGroup.nullable().default(null),
});
export type Journal = z.infer<typeof Journal>;

export function emptyJournal(app: string, path: string, baseline: string | null): Journal {
  return { v: JOURNAL_VERSION, app, path, deployed: null, baseline, active: null, admission: null, last: null, running: null };
}

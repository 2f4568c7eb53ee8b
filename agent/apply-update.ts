import type { AppStateName, StepName } from '../src/shared/messages.js';
import { asStepError, StepError } from './step-error.js';

/** The I/O an update needs, passed in so the sequence is tested with plain fakes. */
export type UpdateIo = {
  /** The SHA the working copy is on, or null when there is none yet. */
  head(): Promise<string | null>;
  /** Makes `sha` present locally (cloning first when the path is empty). */
  fetch(sha: string, ref: string): Promise<void>;
  checkout(sha: string): Promise<void>;
  /** Runs one configured command; rejects with a StepError. */
  run(step: 'update' | 'restart', argv: readonly string[], sha: string): Promise<void>;
  /** Resolves when healthy; rejects with a StepError. Absent when the app has no health check. */
  health?: (sha: string) => Promise<void>;
  now(): number;
};

export type UpdateSteps = { update: readonly (readonly string[])[]; restart: readonly string[] };

export type UpdateResult = {
  /** held: a rollout cancelled the update before it started (see agent/rollout-gate.ts). */
  state: Extract<AppStateName, 'deployed' | 'failed' | 'rolled-back' | 'held'>;
  /** Where the working copy is after the update (or its rollback). */
  sha: string | null;
  previousSha: string | null;
  error: StepError | null;
  durations: Partial<Record<StepName | 'total', number>>;
};

/**
 * fetch → checkout → update → restart → health. If a step after checkout fails, go back to the
 * previous SHA and run update and restart again, so the app runs what it ran before.
 */
export async function applyUpdate(steps: UpdateSteps, target: { sha: string; ref: string }, io: UpdateIo): Promise<UpdateResult> {
  const started = io.now();
  const durations: UpdateResult['durations'] = {};
  const timed = async (step: StepName, work: () => Promise<void>): Promise<void> => {
    const t0 = io.now();
    try {
      await work();
    } catch (err) {
      throw asStepError(step, err);
    } finally {
      durations[step] = (durations[step] ?? 0) + io.now() - t0;
    }
  };
  // A rollback's steps are timed as one "rollback" duration, not added to the forward steps.
  const untimed = (step: StepName, work: () => Promise<void>): Promise<void> =>
    work().catch((err: unknown) => {
      throw asStepError(step, err);
    });
  const deploy = async (sha: string, time = timed): Promise<void> => {
    await time('checkout', () => io.checkout(sha));
    await time('update', async () => {
      for (const argv of steps.update) await io.run('update', argv, sha);
    });
    await time('restart', () => io.run('restart', steps.restart, sha));
  };
  const finish = (state: UpdateResult['state'], sha: string | null, previousSha: string | null, error: StepError | null): UpdateResult => {
    durations.total = io.now() - started;
    return { state, sha, previousSha, error, durations };
  };

  const previous = await io.head().catch(() => null);
  try {
    await timed('fetch', () => io.fetch(target.sha, target.ref));
  } catch (err) {
    return finish('failed', previous, previous, err as StepError);
  }
  try {
    await deploy(target.sha);
    if (io.health) await timed('health', () => io.health!(target.sha));
    return finish('deployed', target.sha, previous, null);
  } catch (err) {
    const failure = err as StepError;
    if (previous === null || previous === target.sha) return finish('failed', await io.head().catch(() => null), previous, failure);
    try {
      await timed('rollback', async () => {
        await deploy(previous, untimed);
        if (io.health) await untimed('health', () => io.health!(previous));
      });
      return finish('rolled-back', previous, previous, failure);
    } catch (rollbackErr) {
      const e = rollbackErr as StepError;
      const both = new StepError('rollback', `${failure.step} failed (${failure.message}); rollback to ${previous} failed too: ${e.message}`, e.outputTail || failure.outputTail);
      return finish('failed', await io.head().catch(() => null), previous, both);
    }
  }
}

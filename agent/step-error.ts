import type { StepName } from '../src/shared/messages.js';

/**
 * A failed update step, carrying the tail of its output for the state message. `permanent`: a
 * step that is retried on transient failures (fetch) failed in a way another try cannot fix.
 */
export class StepError extends Error {
  override name = 'StepError';
  constructor(
    readonly step: StepName,
    message: string,
    readonly outputTail = '',
    readonly permanent = false,
  ) {
    super(message);
  }
}

export function asStepError(step: StepName, err: unknown): StepError {
  return err instanceof StepError ? err : new StepError(step, (err as Error).message ?? String(err));
}

import type { SemErrorEvent } from '../shared/contract/semaphore-messages.js';

/**
 * Why an acquire failed or a lease ended early:
 * - `aborted`: the caller's signal fired while waiting (the registration was withdrawn);
 * - `queue-timeout`: the hub dropped the waiter after its queueTimeout;
 * - `rejected`: the hub refused the register (see `event`, e.g. duplicate-uid or bad-payload);
 * - `expired`: the hub took the slot back after timeout + offset (a lease's signal reason; an acquire
 *   rejects with it when the slot was granted and taken back before this client heard its go);
 * - `cancelled`: the hub withdrew the job itself, waiting or held (e.g. its rollout was aborted);
 * - `no-answer`: an infos request got no reply in time.
 */
export type SemaphoreErrorCode = 'aborted' | 'queue-timeout' | 'rejected' | 'expired' | 'cancelled' | 'no-answer';

export class SemaphoreError extends Error {
  override name = 'SemaphoreError';

  constructor(
    readonly code: SemaphoreErrorCode,
    message: string,
    /** The hub's error event, for `rejected`. */
    readonly event?: SemErrorEvent,
  ) {
    super(message);
  }
}

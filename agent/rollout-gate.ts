import type { Logger } from '../src/shared/logger.js';
import { rolloutChannel, rolloutId } from '../src/shared/topics.js';
import { SemaphoreError, type Lease, type SemaphoreClient } from '../src/semaphore-client/client.js';

/**
 * Admission of one update into its rollout: the agent registers in the rollout's semaphore
 * channel (`pushfleet-rollout.{app}.{env}.{sha12}`) under its own id and starts only on the
 * grant. The uid is stable, so a restarted agent takes its place back (`replace`); a wait is kept
 * across a reconnect, since the hub's go and expired are retained until the agent hears them.
 */
export class RolloutGate {
  constructor(
    private readonly sem: SemaphoreClient,
    private readonly agentId: string,
    private readonly env: string,
    /** Seconds the hub may let this agent hold its slot (the rollout's hostTimeout usually ends it first). */
    private readonly budgetSeconds: number,
    private readonly log: Logger,
  ) {}

  /**
   * Resolves with the lease once granted, or null when the hub cancelled this SHA (rollout
   * aborted or superseded, host pinned) or `signal` fired (a newer push arrived).
   */
  async admit(app: string, sha: string, signal: AbortSignal): Promise<Lease | null> {
    const id = rolloutId(app, this.env, sha);
    try {
      return await this.sem.acquire(rolloutChannel(id), {
        uid: this.agentId,
        timeout: this.budgetSeconds,
        replace: true,
        signal,
        onQueued: (position, waiting) => this.log.info({ rollout: id, position, waiting }, 'waiting for rollout grant'),
      });
    } catch (err) {
      if (!(err instanceof SemaphoreError)) throw err;
      if (err.code !== 'aborted') this.log.info({ rollout: id, reason: err.message }, 'rollout will not update this host');
      return null;
    }
  }

  /** After a reconnect: pending waits send their register again, in case the hub never got it. */
  reconnected(): void {
    this.sem.resync();
  }
}

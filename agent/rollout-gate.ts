import type { Logger } from '../src/shared/logger.js';
import { rolloutChannel, rolloutId } from '../src/shared/topics.js';
import { SemaphoreError, type Lease, type SemaphoreClient } from '../src/semaphore-client/client.js';

/**
 * Admission of one update into its rollout: the agent registers in the rollout's semaphore
 * channel (`pushfleet-rollout.{app}.{env}.{sha12}`) under its own id and starts only on the
 * grant. The uid is stable and each registration's token is journaled before it is sent
 * (agent/journal.ts `admission`): a restarted agent registers again with that token, which the hub
 * takes as a repeat, so the place or slot it held is handed back rather than given up. A new
 * registration withdraws whatever this uid left in the channel without a journaled token
 * (`replace`). A wait is kept across a reconnect, since the hub's go and expired are retained
 * until the agent hears them.
 */
export type AdmitOptions = {
  /** The registration's token, journaled before this call. */
  token: string;
  /** The token was sent before (by a run that stopped): take that registration back as it is. */
  resume: boolean;
  withdraw: AbortSignal;
  detach: AbortSignal;
};

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
   * Resolves with the lease once granted, or with why not: the hub cancelled this SHA (rollout
   * aborted or superseded, host pinned), took the slot back, or the caller stopped waiting
   * (`withdraw`: the registration is withdrawn; `detach`: it stays for a restart to take back).
   */
  async admit(app: string, sha: string, opts: AdmitOptions): Promise<Lease | { refused: string }> {
    const id = rolloutId(app, this.env, sha);
    try {
      return await this.sem.acquire(rolloutChannel(id), {
        uid: this.agentId,
        timeout: this.budgetSeconds,
        token: opts.token,
        replace: !opts.resume,
        signal: opts.withdraw,
        detach: opts.detach,
        onQueued: (position, waiting) => this.log.info({ rollout: id, position, waiting }, 'waiting for rollout grant'),
      });
    } catch (err) {
      if (!(err instanceof SemaphoreError)) throw err;
      if (err.code !== 'aborted') this.log.info({ rollout: id, reason: err.message }, 'rollout will not update this host');
      return { refused: err.message };
    }
  }

  /** Gives back the slot of an update that ended before this run could (the lease went with the previous run). */
  async settle(app: string, sha: string, finished: boolean): Promise<void> {
    await this.sem.end(rolloutChannel(rolloutId(app, this.env, sha)), this.agentId, finished ? 'finished' : 'aborted');
  }

  /** After a reconnect: pending waits send their register again, in case the hub never got it. */
  reconnected(): void {
    this.sem.resync();
  }
}

import type { UpdateResult } from './apply-update.js';

export type Target = {
  sha: string;
  ref: string;
  deliveryId: string;
  receivedAt: string;
  /** The hub sent this SHA itself (a pin or a rollback): no rollout grant is needed. */
  direct?: boolean;
};

export type WorkerHooks = {
  apply(target: Target): Promise<UpdateResult>;
  onStart(target: Target): void;
  onDone(target: Target, result: UpdateResult): void;
  /** A newer target was queued while one is being applied (a rollout wait may give up for it). */
  onNewer?(): void;
};

/**
 * One app's updates, one at a time. Offers that arrive while an update runs collapse so only the
 * newest is applied next; a SHA already deployed, an older push than one already seen (retained
 * heads of several branches arrive in any order) and a delivery already attempted do nothing.
 */
export class AppWorker {
  private deployedSha: string | null;
  private newest: Target | null = null;
  private pending: Target | null = null;
  private lastAttempt: string | null = null;
  private running: Promise<void> | null = null;

  constructor(
    initialSha: string | null,
    private readonly hooks: WorkerHooks,
  ) {
    this.deployedSha = initialSha;
  }

  get sha(): string | null {
    return this.deployedSha;
  }

  get busy(): boolean {
    return this.running !== null;
  }

  /** Returns whether the offer was taken (queued or started). */
  offer(target: Target): boolean {
    if (this.newest && Date.parse(target.receivedAt) < Date.parse(this.newest.receivedAt)) return false;
    this.newest = target;
    if (target.deliveryId === this.lastAttempt) return false;
    if (target.sha === this.deployedSha && !this.running) return false;
    this.pending = target;
    if (this.running) this.hooks.onNewer?.();
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
    return true;
  }

  /** A delivery attempted before the agent restarted: offering it again does nothing. */
  remember(deliveryId: string): void {
    this.lastAttempt = deliveryId;
  }

  /** Forgets the newest offer seen, so an older push is taken again (after an unpin). */
  forgetNewest(): void {
    this.newest = null;
    this.lastAttempt = null;
  }

  /** Resolves when no update is running or queued. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    for (let next = this.take(); next; next = this.take()) {
      this.lastAttempt = next.deliveryId;
      this.hooks.onStart(next);
      const result = await this.hooks.apply(next);
      this.deployedSha = result.sha;
      this.hooks.onDone(next, result);
    }
  }

  private take(): Target | null {
    const next = this.pending;
    this.pending = null;
    if (!next || next.sha === this.deployedSha || next.deliveryId === this.lastAttempt) return null;
    return next;
  }
}

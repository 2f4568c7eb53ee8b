import type { Target } from './journal.js';

/**
 * What one app should run: the SHA it is pinned to, else the newest head or rollback directive
 * offered. Retained heads of several refs arrive in any order, so an offer older than the newest
 * one seen is not taken.
 */
export class DesiredTarget {
  private newest: Target | null = null;
  private pinned: Target | null = null;

  get current(): Target | null {
    return this.pinned ?? this.newest;
  }

  get pinnedSha(): string | null {
    return this.pinned?.sha ?? null;
  }

  /** Returns whether the offer became the newest (a pinned app takes it, but stays on the pin). */
  offer(target: Target): boolean {
    if (this.newest && Date.parse(target.receivedAt) < Date.parse(this.newest.receivedAt)) return false;
    this.newest = target;
    return true;
  }

  /** Pinned (a target) or unpinned (null): unpinned, the newest is forgotten so the heads are offered again. */
  pin(target: Target | null): void {
    if (target === null) this.newest = null;
    this.pinned = target;
  }

  /** `pushfleet retry`: the current target under a new request key, so it is attempted again. */
  rekey(key: string): void {
    if (this.pinned) this.pinned = { ...this.pinned, key };
    else if (this.newest) this.newest = { ...this.newest, key };
  }
}

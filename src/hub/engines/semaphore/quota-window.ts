import type { QuotaRule } from './config.js';

/**
 * One sliding-window quota: at most `limit` grants in any `seconds`-long window. Only the newest
 * `limit` grant times can ever block, so that is all it keeps.
 */
export class QuotaWindow {
  private readonly grants: number[] = [];
  private readonly ms: number;

  constructor(readonly rule: QuotaRule) {
    this.ms = rule.seconds * 1000;
  }

  record(at: number): void {
    this.grants.push(at);
    if (this.grants.length > this.rule.limit) this.grants.shift();
  }

  /** Grants still inside the window at `now`. */
  used(now: number): number {
    while (this.grants.length && this.grants[0]! + this.ms <= now) this.grants.shift();
    return this.grants.length;
  }

  /** When the next grant is allowed: `now` if under the limit, else when the oldest grant leaves the window. */
  freeAt(now: number): number {
    return this.used(now) < this.rule.limit ? now : this.grants[0]! + this.ms;
  }

  /** When the window will be empty (undefined if it is already). */
  emptyAt(now: number): number | undefined {
    return this.used(now) ? this.grants.at(-1)! + this.ms : undefined;
  }
}

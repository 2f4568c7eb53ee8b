import type { Clock } from '../engine.js';

export type PacerOptions = {
  /** The least time between two publishes of one key (0: publish on every change). */
  intervalMs: number;
  /** A large snapshot waits longer: its bytes at this rate, when that is longer than intervalMs. */
  bytesPerSecond: number;
};

type Entry = { publish: () => number; lastAt: number; waitMs: number; timer?: unknown };

/**
 * Coalesces the republishing of something that changes often (a rollout's retained snapshot):
 * a change publishes at once when the last publish is long enough ago, else once when it is,
 * with the latest state; an urgent change (a status) publishes at once either way. `publish`
 * returns the bytes it sent, which set how long the next one waits.
 */
export class SnapshotPacer {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly clock: Clock,
    private readonly opts: PacerOptions,
  ) {}

  changed(key: string, urgent: boolean, publish: () => number): void {
    const now = this.clock.now();
    let e = this.entries.get(key);
    if (!e) {
      e = { publish, lastAt: -Infinity, waitMs: 0 };
      this.entries.set(key, e);
    }
    e.publish = publish;
    const dueAt = e.lastAt + e.waitMs;
    if (urgent || now >= dueAt) return this.fire(key, e);
    e.timer ??= this.clock.setTimeout(() => this.fire(key, e), dueAt - now);
  }

  /** Publishes what is pending now (at stop, so the retained copy is the last state). */
  flush(): void {
    for (const [key, e] of this.entries) if (e.timer !== undefined) this.fire(key, e);
  }

  /** Forgets `key` (its pending publish is dropped). */
  forget(key: string): void {
    const e = this.entries.get(key);
    if (e?.timer !== undefined) this.clock.clearTimeout(e.timer);
    this.entries.delete(key);
  }

  stop(): void {
    for (const key of [...this.entries.keys()]) this.forget(key);
  }

  private fire(key: string, e: Entry): void {
    if (e.timer !== undefined) this.clock.clearTimeout(e.timer);
    e.timer = undefined;
    const bytes = e.publish();
    e.lastAt = this.clock.now();
    e.waitMs = Math.max(this.opts.intervalMs, (bytes / this.opts.bytesPerSecond) * 1000);
    // An idle key needs no entry: the next change finds it due and publishes at once.
    if (this.opts.intervalMs === 0) this.entries.delete(key);
  }
}

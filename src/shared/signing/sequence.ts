/**
 * The hub's message sequence: strictly increasing, and following the clock (µs since epoch), so
 * a restarted hub continues above what its previous run signed. `last`: where a previous run
 * left off at most (see the hub's signing-sequence.ts), for a clock that was set back meanwhile.
 */
export class SequenceCounter {
  constructor(private last = 0) {}

  next(nowMs: number): number {
    this.last = Math.max(this.last + 1, Math.floor(nowMs) * 1000);
    return this.last;
  }
}

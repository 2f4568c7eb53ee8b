/**
 * The hub's message sequence: strictly increasing, and starting from the clock (µs since epoch)
 * so a restarted hub continues above every sequence its previous run signed without storing one.
 */
export class SequenceCounter {
  private last = 0;

  next(nowMs: number): number {
    this.last = Math.max(this.last + 1, Math.floor(nowMs) * 1000);
    return this.last;
  }
}

/** Clients' publishes the embedded broker takes in per event-loop turn; the rest wait a turn. */
export const PUBLISHES_PER_TURN = 64;

/**
 * Spreads a burst of clients' publishes over event-loop turns. After a push to 10,000 agents their
 * reports arrive within a few hundred milliseconds; taken all at once, each phase of the loop
 * (decode and check them, store them in one commit, hand them to the engines, acknowledge them)
 * runs for hundreds of milliseconds, and a webhook that arrives meanwhile waits for every one.
 * Taken `perTurn` a turn, the loop comes back to its sockets every few milliseconds; the burst
 * takes as long as before, its clients just wait for their PUBACKs a little longer (each client's
 * next packets wait for its publish, as aedes reads a client one batch at a time). The waiting
 * ones go in arrival order. `defer` runs a function once the loop has polled its sockets again
 * (setImmediate).
 */
export class InboundPacer {
  private taken = 0;
  private readonly waiting: (() => void)[] = [];
  private head = 0;
  private scheduled = false;

  constructor(
    private readonly perTurn = PUBLISHES_PER_TURN,
    private readonly defer: (fn: () => void) => void = setImmediate,
  ) {}

  /** Runs `go` now if this turn has room and nobody is waiting, otherwise in a later turn. */
  admit(go: () => void): void {
    if (this.head === this.waiting.length && this.taken < this.perTurn) {
      this.taken++;
      this.nextTurnSoon();
      go();
      return;
    }
    this.waiting.push(go);
    this.nextTurnSoon();
  }

  /** Publishes waiting for a turn. */
  get backlog(): number {
    return this.waiting.length - this.head;
  }

  private nextTurnSoon(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.defer(this.turn);
  }

  private readonly turn = (): void => {
    this.scheduled = false;
    this.taken = 0;
    // Before any `go`: should one throw, the ones after it still get their turn.
    if (this.backlog > 0) this.nextTurnSoon();
    while (this.taken < this.perTurn && this.head < this.waiting.length) {
      const go = this.waiting[this.head]!;
      this.waiting[this.head++] = undefined as never;
      this.taken++;
      go();
    }
    if (this.head === this.waiting.length) {
      this.waiting.length = 0;
      this.head = 0;
    }
    if (this.taken > 0) this.nextTurnSoon();
  };
}

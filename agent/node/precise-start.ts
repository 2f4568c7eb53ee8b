import { preciseNow } from '../../src/hub/engines/orchestrator/precise-time.js';

/**
 * The timer wakes us this long before the start: Node timers have 1 ms steps, and run late while
 * the event loop is busy (a garbage collection, a burst of messages, an update's output).
 * Sleeping the rest in Atomics.wait keeps all of that away from the start instant, at the price
 * of blocking this agent's event loop that long once per timed start: only a stall longer than
 * this, already under way when the timer is due, can make a start late.
 */
const WAKE_EARLY_MS = 50;
/** The last stretch is spun rather than slept: a futex wake-up has tens of microseconds of jitter. */
const SPIN_MS = 0.1;
const futex = new Int32Array(new SharedArrayBuffer(4));

/**
 * Calls `fn(t)` at local time `at` (preciseNow ms) with sub-millisecond precision: a timer to a few
 * ms before, then Atomics.wait (a kernel sleep with microsecond resolution that burns no CPU, so
 * many nodes on few cores do not starve each other) until just before, then a short spin. Blocks
 * the event loop for at most WAKE_EARLY_MS. `t` is the actual time; a past `at` fires at once.
 * Returns a cancel function.
 */
export function runAt(at: number, fn: (t: number) => void, now: () => number = preciseNow): () => void {
  let cancelled = false;
  const fire = () => {
    if (cancelled) return;
    const sleepMs = at - now() - SPIN_MS;
    if (sleepMs > 0) Atomics.wait(futex, 0, 0, sleepMs);
    let t = now();
    while (t < at) t = now();
    fn(t);
  };
  const timer = setTimeout(fire, Math.max(0, at - now() - WAKE_EARLY_MS));
  return () => {
    cancelled = true;
    clearTimeout(timer);
  };
}

/** A mapping read across a preemption is thrown away and read again, at most this often. */
const EDGE_TRIES = 5;
/** The widest bracket around the millisecond edge that counts as one uninterrupted read. */
const EDGE_BRACKET_MS = 0.02;

/**
 * CLOCK_REALTIME − `now` in ms, with microsecond precision, for a gate that waits on the system
 * clock (timed-gate.ts) while start instants are on `now` (monotonic, so the two differ by what
 * NTP stepped since the process started, and by how `now`'s origin was taken). `wall` (Date.now)
 * has millisecond steps, so spin until it ticks over: at that edge, realtime is exactly the new
 * millisecond, and `now` read just before and after brackets it. Blocks for up to a millisecond
 * per try.
 */
export function realtimeOffsetMs(now: () => number = preciseNow, wall: () => number = Date.now): number {
  let best = { offset: NaN, bracket: Infinity };
  for (let i = 0; i < EDGE_TRIES && best.bracket > EDGE_BRACKET_MS; i++) {
    // lo: read before the last `wall()` that still gave `from`; hi: after the first that did not.
    let lo = now();
    const from = wall();
    for (;;) {
      const t = now();
      const w = wall();
      const hi = now();
      if (w !== from) {
        if (hi - lo < best.bracket) best = { offset: w - (lo + hi) / 2, bracket: hi - lo };
        break;
      }
      lo = t;
    }
  }
  return best.offset;
}

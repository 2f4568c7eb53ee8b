/**
 * Wall-clock milliseconds with sub-millisecond resolution. Date.now() has 1 ms steps, too coarse
 * for sub-millisecond start skew. It follows the monotonic clock from process start, so it never
 * jumps when NTP steps the system clock; agents re-measure their offset to the hub periodically,
 * which also absorbs slow drift between the two.
 */
export const preciseNow = (): number => performance.timeOrigin + performance.now();

import { describe, expect, it } from 'vitest';
import { backoffMs } from '../../agent/backoff.js';

const policy = { initialMs: 5000, maxMs: 300_000 };

describe('backoffMs', () => {
  it('doubles from the initial delay, with half of it random', () => {
    expect([1, 2, 3, 4].map((n) => backoffMs(n, policy, () => 1))).toEqual([5000, 10_000, 20_000, 40_000]);
    expect([1, 2, 3, 4].map((n) => backoffMs(n, policy, () => 0))).toEqual([2500, 5000, 10_000, 20_000]);
    expect(backoffMs(2, policy, () => 0.5)).toBe(7500);
  });

  it('stops growing at the cap, however many failures', () => {
    expect(backoffMs(7, policy, () => 1)).toBe(300_000);
    expect(backoffMs(1000, policy, () => 1)).toBe(300_000);
    expect(backoffMs(1000, policy, () => 0)).toBe(150_000);
  });

  it('spreads agents that failed together', () => {
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const delays = new Set(Array.from({ length: 20 }, () => backoffMs(3, policy, random)));
    expect(delays.size).toBeGreaterThan(15);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(10_000);
    for (const d of delays) expect(d).toBeLessThanOrEqual(20_000);
  });
});

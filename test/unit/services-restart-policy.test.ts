import { describe, expect, it } from 'vitest';
import { DEFAULT_RESTART, onExit, rescheduleDelayMs } from '../../src/hub/engines/services/restart-policy.js';

describe('restart policy', () => {
  it('restarts with a doubling delay, then reschedules after attempts exits within the interval', () => {
    let exits: number[] = [];
    const delays: number[] = [];
    for (const now of [1000, 3000, 8000]) {
      const d = onExit(exits, now, DEFAULT_RESTART);
      if (d.kind !== 'restart') throw new Error('expected a restart');
      delays.push(d.at - now);
      exits = d.exits;
    }
    expect(delays).toEqual([1000, 2000, 4000]);
    expect(onExit(exits, 20_000, DEFAULT_RESTART)).toEqual({ kind: 'reschedule', exits: [1000, 3000, 8000, 20_000] });
  });

  it('forgets exits older than the interval, so a service that crashes rarely is never moved', () => {
    const d = onExit([0, 1000, 2000], DEFAULT_RESTART.intervalMs + 1500, DEFAULT_RESTART);
    expect(d).toEqual({ kind: 'restart', at: DEFAULT_RESTART.intervalMs + 1500 + 2000, exits: [2000, DEFAULT_RESTART.intervalMs + 1500] });
  });

  it('caps both backoffs', () => {
    const policy = { ...DEFAULT_RESTART, attempts: 100 };
    const d = onExit(Array.from({ length: 50 }, (_, i) => i), 60, policy);
    expect(d.kind === 'restart' && d.at - 60).toBe(policy.maxDelayMs);
    expect([1, 2, 3].map((n) => rescheduleDelayMs(n, policy))).toEqual([5000, 10_000, 20_000]);
    expect(rescheduleDelayMs(40, policy)).toBe(policy.rescheduleMaxDelayMs);
  });
});

import type { ClockEstimate } from '../../src/shared/contract/orchestrator-messages.js';

export type ClockSample = { offsetMs: number; rttMs: number };

/**
 * One NTP-style exchange: the agent sent at t0 and received at t3 (its clock), the hub received
 * at t1 and replied at t2 (hub clock). The hub's own processing (t2 − t1) is not network delay.
 * Assuming equal delays both ways, offset = hub − agent; any asymmetry errs by at most rtt / 2.
 */
export function clockSample(t0: number, t1: number, t2: number, t3: number): ClockSample {
  return { offsetMs: (t1 - t0 + (t2 - t3)) / 2, rttMs: Math.max(0, t3 - t0 - (t2 - t1)) };
}

/** The sample with the smallest round trip is the least disturbed by queueing: keep that one. */
export function bestEstimate(samples: readonly ClockSample[], measuredAt: number): ClockEstimate | null {
  if (samples.length === 0) return null;
  const best = samples.reduce((a, b) => (b.rttMs < a.rttMs ? b : a));
  return { offsetMs: best.offsetMs, rttMs: best.rttMs, errorMs: best.rttMs / 2, samples: samples.length, measuredAt };
}

import { describe, expect, it } from 'vitest';
import { bestEstimate, clockSample } from '../../agent/node/clock-offset.js';
import { ClockSync } from '../../agent/node/clock-sync.js';
import { realtimeOffsetMs, runAt } from '../../agent/node/precise-start.js';
import { SCHEMA_VERSION } from '../../src/shared/messages.js';
import { type TimeReply } from '../../src/shared/contract/orchestrator-messages.js';

/**
 * A ClockSync on a fake local clock, with no gap between pings; `hub` plays the hub for each ping
 * and answers through `reply` (or drops the ping by not calling it).
 */
function fakeSync(now: () => number, samples: number, hub: (seq: number, t0: number, reply: (r: TimeReply, t3: number) => void) => void, replyTimeoutMs = 50) {
  const sync: ClockSync = new ClockSync({
    now,
    samples,
    replyTimeoutMs,
    gapMs: 0,
    keepBetterMs: 1000,
    send: (seq, t0) => hub(seq, t0, (r, t3) => queueMicrotask(() => sync.onReply(r, t3))),
  });
  return sync;
}

describe('clock offset', () => {
  it('computes offset and round trip from one exchange, excluding the hub processing time', () => {
    // Hub is 1000 ms ahead; 2 ms each way; the hub took 0.5 ms to answer.
    expect(clockSample(0, 1002, 1002.5, 4.5)).toEqual({ offsetMs: 1000, rttMs: 4 });
    // Asymmetric delays (1 ms out, 3 ms back) err by half the difference, within rtt / 2.
    const s = clockSample(0, 1001, 1001, 4);
    expect(s).toEqual({ offsetMs: 999, rttMs: 4 });
    expect(Math.abs(s.offsetMs - 1000)).toBeLessThanOrEqual(s.rttMs / 2);
  });

  it('keeps the sample with the smallest round trip and reports rtt / 2 as the error', () => {
    const e = bestEstimate([{ offsetMs: 7, rttMs: 9 }, { offsetMs: 5.1, rttMs: 0.4 }, { offsetMs: 3, rttMs: 2 }], 42);
    expect(e).toEqual({ offsetMs: 5.1, rttMs: 0.4, errorMs: 0.2, samples: 3, measuredAt: 42 });
    expect(bestEstimate([], 0)).toBeNull();
  });

  it('measures against a simulated hub, ignoring lost and delayed pings', async () => {
    let local = 10_000;
    const hubOffset = -250.25;
    let n = 0;
    const sync = fakeSync(() => local, 5, (seq, t0, reply) => {
      n++;
      if (n === 2) return; // lost: the ping times out and is skipped
      const delay = n === 3 ? 40 : 1; // one sample queued behind something slow
      local += delay;
      const t1 = local + hubOffset;
      local += 0.1 + delay;
      reply({ v: SCHEMA_VERSION, seq, t0, t1, t2: t1 + 0.1 }, local);
    });
    const estimate = await sync.measure();
    expect(estimate).toMatchObject({ offsetMs: hubOffset, rttMs: 2, errorMs: 1, samples: 4 });
  });

  it('keeps the previous estimate when no ping is answered', async () => {
    const sync = fakeSync(() => 0, 2, () => undefined, 5);
    expect(await sync.measure()).toBeNull();
    expect(sync.estimate).toBeNull();
  });

  it('keeps a recent better estimate over a worse new one, until it is old', async () => {
    let local = 0;
    let rtt = 1;
    const sync = fakeSync(() => local, 1, (seq, t0, reply) => {
      local += rtt;
      reply({ v: SCHEMA_VERSION, seq, t0, t1: t0 + 5 + rtt / 2, t2: t0 + 5 + rtt / 2 }, local);
    });
    await sync.measure();
    rtt = 9; // a busy moment: worse, and kept out
    local += 500;
    expect(await sync.measure()).toMatchObject({ rttMs: 1, measuredAt: 1 });
    local += 600; // the good one is now too old
    expect(await sync.measure()).toMatchObject({ rttMs: 9 });
  });
});

describe('runAt', () => {
  it('never fires before its instant, and not at all once cancelled', async () => {
    const fired: number[] = [];
    const at = performance.timeOrigin + performance.now() + 20;
    runAt(at, (t) => fired.push(t));
    const cancel = runAt(at, () => fired.push(-1));
    cancel();
    await new Promise((r) => setTimeout(r, 60));
    expect(fired).toHaveLength(1);
    expect(fired[0]).toBeGreaterThanOrEqual(at);
  });

  it('fires at once for an instant already past', async () => {
    const at = performance.timeOrigin + performance.now() - 5;
    const t = await new Promise<number>((resolve) => runAt(at, resolve));
    expect(t).toBeGreaterThan(at);
  });
});

describe('realtimeOffsetMs', () => {
  /** One simulated instant both clocks read, moving `step` ms at every read; realtime is `offset` ahead (a few ms: both are epoch ms) and seen in whole ms. */
  function clocks(offset: number, step: number, stall: (reads: number) => number = () => 0) {
    let t = 1000.1234;
    let reads = 0;
    const tick = () => (t += step + stall(++reads));
    return { now: () => tick(), wall: () => Math.floor(tick() + offset) };
  }

  it('finds realtime − now to within the reads around the millisecond edge', () => {
    const { now, wall } = clocks(2.4321, 0.0002);
    expect(realtimeOffsetMs(now, wall)).toBeCloseTo(2.4321, 3);
  });

  it('throws away a reading that a preemption stretched across the edge, and reads again', () => {
    // A 0.7 ms stall between reads 3000 and 3001 (the first edge is about 2,800 reads in).
    const { now, wall } = clocks(500.25, 0.0002, (n) => (n === 3001 ? 0.7 : 0));
    expect(realtimeOffsetMs(now, wall)).toBeCloseTo(500.25, 3);
  });
});

import type { ClockEstimate, TimeReply } from '../../src/shared/contract/orchestrator-messages.js';
import { bestEstimate, clockSample, type ClockSample } from './clock-offset.js';

export type ClockSyncDeps = {
  /** Publishes one ping. */
  send(seq: number, t0: number): void;
  now(): number;
  samples: number;
  /** A ping without reply in this time is dropped (the hub may not run the orchestrator). */
  replyTimeoutMs: number;
  /** Pause between pings, so one burst of queueing does not spoil every sample. */
  gapMs: number;
  /**
   * A new measurement replaces a better (lower round trip) one only once that is this old: a
   * measurement taken while the host was busy must not undo a good one. Clocks disciplined by NTP
   * drift apart by microseconds per minute, so a few minutes' age costs nothing.
   */
  keepBetterMs: number;
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Measures this agent's clock offset to the hub (hub − agent), keeping the best estimate. */
export class ClockSync {
  private seq = 0;
  private readonly pending = new Map<number, (sample: ClockSample) => void>();
  estimate: ClockEstimate | null = null;

  constructor(private readonly deps: ClockSyncDeps) {}

  /** `t3` is taken by the caller as the reply arrives, before decoding it. */
  onReply(reply: TimeReply, t3: number): void {
    this.pending.get(reply.seq)?.(clockSample(reply.t0, reply.t1, reply.t2, t3));
  }

  /** Pings `samples` times and keeps the best, unless the current estimate is recent and better. */
  async measure(): Promise<ClockEstimate | null> {
    const samples: ClockSample[] = [];
    for (let i = 0; i < this.deps.samples; i++) {
      if (i > 0) await sleep(this.deps.gapMs);
      const sample = await this.ping();
      if (sample) samples.push(sample);
    }
    const fresh = bestEstimate(samples, this.deps.now());
    const current = this.estimate;
    if (fresh && (!current || fresh.rttMs <= current.rttMs || fresh.measuredAt - current.measuredAt > this.deps.keepBetterMs)) this.estimate = fresh;
    return this.estimate;
  }

  private ping(): Promise<ClockSample | null> {
    const seq = this.seq++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        resolve(null);
      }, this.deps.replyTimeoutMs);
      this.pending.set(seq, (sample) => {
        clearTimeout(timer);
        this.pending.delete(seq);
        resolve(sample);
      });
      this.deps.send(seq, this.deps.now());
    });
  }
}

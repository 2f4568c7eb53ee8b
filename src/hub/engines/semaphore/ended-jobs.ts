import type { Clock } from '../engine.js';
import type { TableBound } from '../table-bound.js';
import { alarmAt, type Alarm } from './alarm.js';
import { isKeptExpiry, type EndedJob, type KeptExpiry, type SemaphoreStore } from './store.js';

export type EndedJobsDeps = {
  clock: Clock;
  store: SemaphoreStore;
  /** How long an ended job is kept (`retainExpiredSeconds`). */
  keepMs: number;
  /** An expiry kept from before a restart: its retained `expired` is published again. */
  kept(job: KeptExpiry): void;
  /** An expiry is forgotten (its time is up, or the uid registered again): its retained `expired` goes. */
  forgotten(job: KeptExpiry): void;
  /** Past its limit the oldest is forgotten early. */
  bound?: TableBound;
};

const key = (channel: string, uid: string) => `${channel}\u0000${uid}`;

/**
 * The last ended job of each uid per channel, for a bounded time: what keeps a retained
 * `expired/{uid}` on the broker, and what tells a late copy of a register (same token) from a
 * new job. One alarm, for the oldest; the map's insertion order is age order.
 */
export class EndedJobs {
  private readonly jobs = new Map<string, EndedJob>();
  private alarm?: Alarm;

  constructor(private readonly deps: EndedJobsDeps) {}

  /** Takes the stored rows (oldest first) back after a restart. */
  load(rows: EndedJob[]): void {
    const now = this.deps.clock.now();
    for (const job of rows) {
      if (job.at + this.deps.keepMs <= now) this.forget(job);
      else {
        this.jobs.set(key(job.channel, job.uid), job);
        if (isKeptExpiry(job)) this.deps.kept(job);
      }
    }
    this.arm();
  }

  get(channel: string, uid: string): EndedJob | undefined {
    return this.jobs.get(key(channel, uid));
  }

  /** The store already holds it (it was written with the job's deletion). */
  remember(job: EndedJob): void {
    const k = key(job.channel, job.uid);
    this.jobs.delete(k);
    const { bound } = this.deps;
    if (bound && !bound.admits(this.jobs.size, k)) {
      // Insertion order is age order: the first is the oldest.
      const [oldestKey, oldest] = this.jobs.entries().next().value!;
      this.jobs.delete(oldestKey);
      this.forget(oldest);
    }
    this.jobs.set(k, job);
    if (!this.alarm) this.arm();
  }

  /** A new registration of the uid: the ended job no longer speaks for it. */
  drop(job: EndedJob): void {
    this.jobs.delete(key(job.channel, job.uid));
    this.forget(job);
  }

  stop(): void {
    this.alarm?.cancel();
    this.alarm = undefined;
  }

  private forget(job: EndedJob): void {
    this.deps.store.deleteEnded(job.channel, job.uid);
    if (isKeptExpiry(job)) this.deps.forgotten(job);
  }

  private arm(): void {
    this.stop();
    const oldest = this.jobs.values().next();
    if (oldest.done) return;
    this.alarm = alarmAt(this.deps.clock, oldest.value.at + this.deps.keepMs, () => {
      this.alarm = undefined;
      const now = this.deps.clock.now();
      for (const [k, job] of this.jobs) {
        if (job.at + this.deps.keepMs > now) break;
        this.jobs.delete(k);
        this.forget(job);
      }
      this.arm();
    });
  }
}

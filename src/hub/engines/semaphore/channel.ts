import type { SemInfo } from '../../../shared/contract/semaphore-messages.js';
import type { Clock } from '../engine.js';
import { alarmAt, type Alarm } from './alarm.js';
import type { ChannelOptions } from './config.js';
import { QuotaWindow } from './quota-window.js';
import type { ExpiryReason, SemaphoreStore, StoredJob } from './store.js';

export type Job = Omit<StoredJob, 'channel'>;
export type { ExpiryReason } from './store.js';

/** What a channel tells the outside world; the engine turns each into an MQTT message. */
export type ChannelEvents = {
  granted(channel: string, job: Job): void;
  /** A job that held its slot before a restart and still does: its go is published again. */
  restored(channel: string, job: Job): void;
  queued(channel: string, job: Job, position: number, waiting: number): void;
  /** Finished or aborted by its client. */
  released(channel: string, job: Job): void;
  expired(channel: string, job: Job, reason: ExpiryReason, at: number): void;
};

export type ChannelDeps = {
  clock: Clock;
  store: SemaphoreStore;
  events: ChannelEvents;
  positionUpdateMs: number;
  /** Stores that a job left (deleting it); `reason` is null when its client ended it. */
  ended(channel: string, job: Job, reason: ExpiryReason | null, at: number): void;
  /** Called when the channel holds nothing any more, so its owner can drop it. */
  onIdle(channel: string): void;
};

type Entry = { job: Job; alarm?: Alarm; toldPosition?: number };

/** Position updates go to the head of the queue only: beyond it they would cost O(queue) per grant. */
const POSITION_UPDATES_FOR = 100;

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * One channel's slots, FIFO queue and quota windows. Every change is stored before its event is
 * emitted. Grants happen on the change that allows them (a release, an expiry, a raised limit, or
 * the one alarm set for when the quota window frees), never by polling.
 */
export class SemaphoreChannel {
  private readonly working = new Map<string, Entry>();
  /** Insertion order is queue order. */
  private readonly waiting = new Map<string, Entry>();
  private readonly windows: QuotaWindow[];
  private wake?: Alarm;
  private positions?: Alarm;
  private grantsSincePrune = 0;

  constructor(
    readonly name: string,
    private readonly options: ChannelOptions,
    private override: number | undefined,
    private readonly deps: ChannelDeps,
  ) {
    this.windows = options.quotas.map((rule) => new QuotaWindow(rule));
  }

  get max(): number {
    return this.override ?? this.options.maxConcurrentJobs;
  }

  /** The job of `uid`, working or waiting. */
  job(uid: string): Job | undefined {
    return (this.working.get(uid) ?? this.waiting.get(uid))?.job;
  }

  /** Jobs granted (holding a place) and jobs queued. */
  get occupancy(): { holders: number; queued: number } {
    return { holders: this.working.size, queued: this.waiting.size };
  }

  /** Jobs working and waiting. */
  get size(): number {
    return this.working.size + this.waiting.size;
  }

  holds(uid: string): 'working' | 'waiting' | null {
    return this.working.has(uid) ? 'working' : this.waiting.has(uid) ? 'waiting' : null;
  }

  /** Grants at once when nobody waits, a slot is free and the quotas allow; else queues. */
  register(job: Job): 'granted' | 'queued' {
    const now = this.deps.clock.now();
    if (this.waiting.size === 0 && this.working.size < this.max && this.quotaFreeAt(now) <= now) {
      this.grant(job, now, true);
      return 'granted';
    }
    this.deps.store.insertJob({ channel: this.name, ...job });
    const entry = this.enqueue(job);
    entry.toldPosition = this.waiting.size;
    this.deps.events.queued(this.name, job, this.waiting.size, this.waiting.size);
    this.pump();
    return 'queued';
  }

  /** Ends a job (finished and aborted both do); says whether it was working or waiting, null if unknown. */
  remove(uid: string): 'working' | 'waiting' | null {
    const entry = this.working.get(uid) ?? this.waiting.get(uid);
    if (!entry) return null;
    const was = entry.job.grantedAt === null ? 'waiting' : 'working';
    this.drop(entry);
    this.deps.ended(this.name, entry.job, null, this.deps.clock.now());
    this.deps.events.released(this.name, entry.job);
    this.pump();
    return was;
  }

  /** Takes a job out and tells its client why (an `expired` event); false if the uid is unknown. */
  evict(uid: string, reason: ExpiryReason): boolean {
    const entry = this.working.get(uid) ?? this.waiting.get(uid);
    if (!entry) return false;
    this.expire(entry, reason);
    this.pump();
    return true;
  }

  setOverride(max: number | undefined): void {
    this.override = max;
    this.pump();
  }

  /** Puts back a stored job without events; `resume` re-arms everything afterwards. */
  restore(job: Job): void {
    if (job.grantedAt === null) this.waiting.set(job.uid, { job });
    else this.working.set(job.uid, { job });
  }

  restoreGrant(at: number): void {
    for (const w of this.windows) w.record(at);
  }

  /** After a restart: expires what ran out while the hub was down, re-arms the rest, grants what it can. */
  resume(): void {
    const now = this.deps.clock.now();
    for (const entry of [...this.working.values(), ...this.waiting.values()]) {
      const at = this.expiresAt(entry.job);
      if (at !== null && at <= now) this.expire(entry, entry.job.grantedAt === null ? 'queue-timeout' : 'timeout');
      else {
        this.armExpiry(entry);
        if (entry.job.grantedAt !== null) this.deps.events.restored(this.name, entry.job);
      }
    }
    this.pump();
  }

  info(): Omit<SemInfo, 'v' | 'channel'> {
    const now = this.deps.clock.now();
    return {
      maxConcurrentJobs: this.max,
      timeoutOffset: this.options.timeoutOffset,
      working: [...this.working.values()].map(({ job }) => ({ uid: job.uid, grantedAt: iso(job.grantedAt!), expiresAt: iso(this.expiresAt(job)!) })),
      waiting: [...this.waiting.values()].map(({ job }) => ({
        uid: job.uid,
        registeredAt: iso(job.registeredAt),
        queueDeadline: job.queueDeadline === null ? null : iso(job.queueDeadline),
      })),
      quotas: this.windows.map((w) => {
        const freeAt = w.freeAt(now);
        return { ...w.rule, used: w.used(now), freeAt: freeAt > now ? iso(freeAt) : null };
      }),
    };
  }

  stop(): void {
    for (const entry of [...this.working.values(), ...this.waiting.values()]) entry.alarm?.cancel();
    this.wake?.cancel();
    this.positions?.cancel();
  }

  private enqueue(job: Job): Entry {
    const entry: Entry = { job };
    this.waiting.set(job.uid, entry);
    this.armExpiry(entry);
    return entry;
  }

  private grant(job: Job, now: number, isNew: boolean): void {
    job.grantedAt = now;
    if (isNew) this.deps.store.insertJob({ channel: this.name, ...job });
    else this.deps.store.markGranted(this.name, job.uid, now);
    if (this.windows.length) this.recordGrant(now);
    const entry: Entry = { job };
    this.working.set(job.uid, entry);
    this.armExpiry(entry);
    this.deps.events.granted(this.name, job);
  }

  private recordGrant(now: number): void {
    for (const w of this.windows) w.record(now);
    this.deps.store.recordGrant(this.name, now);
    // Old grant times only matter for the longest window; trim them now and then, not per grant.
    if (++this.grantsSincePrune >= 256) {
      this.grantsSincePrune = 0;
      this.deps.store.pruneGrants(this.name, now - Math.max(...this.windows.map((w) => w.rule.seconds)) * 1000);
    }
  }

  /** Grants waiters, head first, while slots and quotas allow; then checks whether the channel is idle. */
  private pump(): void {
    const now = this.deps.clock.now();
    let moved = false;
    while (this.waiting.size && this.working.size < this.max) {
      const freeAt = this.quotaFreeAt(now);
      if (freeAt > now) {
        this.wakeAt(freeAt);
        break;
      }
      const [uid, entry] = this.waiting.entries().next().value!;
      this.waiting.delete(uid);
      entry.alarm?.cancel();
      this.grant(entry.job, now, false);
      moved = true;
    }
    if (moved) this.schedulePositions();
    if (this.working.size === 0 && this.waiting.size === 0) this.idle(now);
  }

  /** No jobs left: drop the channel now, or once its last quota window has emptied. */
  private idle(now: number): void {
    const emptyAt = Math.max(0, ...this.windows.map((w) => w.emptyAt(now) ?? 0));
    if (emptyAt > now) return this.wakeAt(emptyAt);
    this.stop();
    if (this.windows.length) this.deps.store.pruneGrants(this.name, now);
    this.deps.onIdle(this.name);
  }

  private wakeAt(at: number): void {
    this.wake?.cancel();
    this.wake = alarmAt(this.deps.clock, at, () => {
      this.wake = undefined;
      this.pump();
    });
  }

  private quotaFreeAt(now: number): number {
    let at = now;
    for (const w of this.windows) at = Math.max(at, w.freeAt(now));
    return at;
  }

  private expiresAt(job: Job): number | null {
    if (job.grantedAt !== null) return job.grantedAt + job.timeoutMs + this.options.timeoutOffset * 1000;
    return job.queueDeadline;
  }

  private armExpiry(entry: Entry): void {
    const at = this.expiresAt(entry.job);
    if (at === null) return;
    const reason: ExpiryReason = entry.job.grantedAt === null ? 'queue-timeout' : 'timeout';
    entry.alarm = alarmAt(this.deps.clock, at, () => {
      this.expire(entry, reason);
      this.pump();
    });
  }

  private expire(entry: Entry, reason: ExpiryReason): void {
    this.drop(entry);
    const now = this.deps.clock.now();
    this.deps.ended(this.name, entry.job, reason, now);
    this.deps.events.expired(this.name, entry.job, reason, now);
  }

  private drop(entry: Entry): void {
    entry.alarm?.cancel();
    this.working.delete(entry.job.uid);
    if (this.waiting.delete(entry.job.uid)) this.schedulePositions();
  }

  /** Tells the head of the queue its new positions, at most once per positionUpdateMs. */
  private schedulePositions(): void {
    if (this.positions || this.deps.positionUpdateMs === 0 || this.waiting.size === 0) return;
    this.positions = alarmAt(this.deps.clock, this.deps.clock.now() + this.deps.positionUpdateMs, () => {
      this.positions = undefined;
      let position = 0;
      for (const entry of this.waiting.values()) {
        if (++position > POSITION_UPDATES_FOR) break;
        if (entry.toldPosition === position) continue;
        entry.toldPosition = position;
        this.deps.events.queued(this.name, entry.job, position, this.waiting.size);
      }
    });
  }
}

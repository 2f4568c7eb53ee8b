import type { SemInfo } from '../../../shared/contract/semaphore-messages.js';
import { SemaphoreChannel, type ChannelDeps, type ChannelEvents, type ExpiryReason, type Job } from './channel.js';
import type { ChannelOptions } from './config.js';
import { EndedJobs } from './ended-jobs.js';
import type { TableBound } from '../table-bound.js';
import type { EndedJob, KeptExpiry } from './store.js';

export type { ExpiryReason, Job } from './channel.js';
export type { EndedJob, KeptExpiry } from './store.js';
export { isKeptExpiry } from './store.js';

/** Channel events, and those of the retained `expired` messages kept for ended jobs. */
export type SemaphoreEvents = ChannelEvents & {
  /** Kept from before a restart: publish its retained `expired` again. */
  keptExpiry(job: KeptExpiry): void;
  /** Its time is up or the uid registered again: clear its retained `expired`. */
  forgotExpiry(job: KeptExpiry): void;
};

export type NewJob = { uid: string; route: string; timeoutMs: number; queueTimeoutMs?: number; token?: string };

/** What every channel shares, each channel's options, and how long ended jobs are kept. */
export type StateDeps = Omit<ChannelDeps, 'onIdle' | 'ended' | 'events'> & {
  events: SemaphoreEvents;
  options(channel: string): ChannelOptions;
  keepEndedMs: number;
  /** Bounds of what clients fill: channels (counted per `kind`), jobs per channel, ended jobs kept. */
  bounds?: { channels: TableBound; jobs: TableBound; ended: TableBound; kind(channel: string): string };
};

/** A register that would open a channel past the bound, or add a job to a full channel. */
export type Refused = { full: string };

/**
 * Every channel of the semaphore, without any MQTT: channels are made on first use and dropped
 * as soon as they hold nothing, so idle channels cost no memory and no timers. Concurrency
 * overrides outlive their channel (they are tiny) and are stored.
 */
export class SemaphoreState {
  private readonly channels = new Map<string, SemaphoreChannel>();
  private readonly overrides = new Map<string, number>();
  /** Channels held in `channels`, per kind (see StateDeps.bounds). */
  private readonly perKind = new Map<string, number>();
  private readonly ended: EndedJobs;

  constructor(private readonly deps: StateDeps) {
    this.ended = new EndedJobs({
      clock: deps.clock,
      store: deps.store,
      keepMs: deps.keepEndedMs,
      kept: (job) => deps.events.keptExpiry(job),
      forgotten: (job) => deps.events.forgotExpiry(job),
      bound: deps.bounds?.ended,
    });
  }

  /** Loads what the store holds, then expires and grants what the time now calls for. */
  load(): void {
    const stored = this.deps.store.load();
    for (const { channel, max } of stored.concurrency) this.overrides.set(channel, max);
    for (const { channel, ...job } of stored.jobs) this.channel(channel).restore(job);
    const now = this.deps.clock.now();
    const withGrants = new Set<string>();
    for (const { channel, at } of stored.grants) {
      this.channel(channel).restoreGrant(at);
      withGrants.add(channel);
    }
    // Grant times older than the channel's longest window (all of them if its quotas were removed) are dead weight.
    for (const channel of withGrants) {
      const longest = Math.max(0, ...this.deps.options(channel).quotas.map((q) => q.seconds));
      this.deps.store.pruneGrants(channel, now - longest * 1000);
    }
    this.ended.load(stored.ended);
    for (const ch of [...this.channels.values()]) ch.resume();
  }

  /**
   * 'duplicate' when the uid already holds a slot or a queue place in this channel; 'repeat' when
   * that place, or the uid's last ended job, has the same token: a late copy of the same register.
   */
  register(channel: string, job: NewJob): 'granted' | 'queued' | 'duplicate' | 'repeat' | Refused {
    const token = job.token ?? null;
    const open = this.channels.get(channel);
    const held = open?.job(job.uid);
    if (held) return token !== null && held.token === token ? 'repeat' : 'duplicate';
    const ended = this.ended.get(channel, job.uid);
    if (ended && token !== null && ended.token === token) return 'repeat';
    const refused = this.refuse(channel, open, job.uid);
    if (refused) return refused;
    // Cleared before the new job's go or queued, so its client never takes the old expiry for its own.
    if (ended) this.ended.drop(ended);
    const now = this.deps.clock.now();
    const stored: Job = {
      uid: job.uid,
      route: job.route,
      timeoutMs: job.timeoutMs,
      registeredAt: now,
      queueDeadline: job.queueTimeoutMs === undefined ? null : now + job.queueTimeoutMs,
      grantedAt: null,
      token,
    };
    return this.channel(channel).register(stored);
  }

  /** Finished or aborted: frees the slot or the queue place; says which it held, null when the uid is not there. */
  remove(channel: string, uid: string): 'working' | 'waiting' | null {
    return this.channels.get(channel)?.remove(uid) ?? null;
  }

  holds(channel: string, uid: string): 'working' | 'waiting' | null {
    return this.channels.get(channel)?.holds(uid) ?? null;
  }

  /** The job of `uid` in `channel`, working or waiting. */
  job(channel: string, uid: string): Job | undefined {
    return this.channels.get(channel)?.job(uid);
  }

  /** The last ended job of `uid` in `channel`, while it is kept. */
  endedJob(channel: string, uid: string): EndedJob | undefined {
    return this.ended.get(channel, uid);
  }

  /** The hub withdraws a job itself; its client gets an `expired` event with the reason. */
  evict(channel: string, uid: string, reason: ExpiryReason): boolean {
    return this.channels.get(channel)?.evict(uid, reason) ?? false;
  }

  /** Whether a new job fits: in an open channel below maxJobsPerChannel, or in a new one below maxChannels of its kind. */
  private refuse(channel: string, open: SemaphoreChannel | undefined, uid: string): Refused | null {
    const bounds = this.deps.bounds;
    if (!bounds) return null;
    if (open) return bounds.jobs.admits(open.size, `${channel}/${uid}`) ? null : { full: bounds.jobs.full };
    return bounds.channels.admits(this.perKind.get(bounds.kind(channel)) ?? 0, channel) ? null : { full: bounds.channels.full };
  }

  /** Whether `channel` has its own limit (a concurrency override). */
  hasOverride(channel: string): boolean {
    return this.overrides.has(channel);
  }

  get overrideCount(): number {
    return this.overrides.size;
  }

  /** A new limit for one channel (null: back to its configured one); waiters are granted at once if it grew. */
  setConcurrency(channel: string, max: number | null): void {
    if (max === null) this.overrides.delete(channel);
    else this.overrides.set(channel, max);
    this.deps.store.setConcurrency(channel, max);
    this.channels.get(channel)?.setOverride(max ?? undefined);
  }

  info(channel: string): Omit<SemInfo, 'v'> {
    // An idle channel is described without being created.
    const ch = this.channels.get(channel) ?? this.create(channel);
    return { channel, ...ch.info() };
  }

  /** The channels holding jobs whose names start with `prefix`. */
  channelsStartingWith(prefix: string): string[] {
    return [...this.channels.keys()].filter((name) => name.startsWith(prefix));
  }

  /** Each channel holding jobs, with how many are granted and queued (counts, not the job lists info() builds). */
  occupancy(): { channel: string; holders: number; queued: number }[] {
    return [...this.channels].map(([channel, ch]) => ({ channel, ...ch.occupancy }));
  }

  get activeChannels(): number {
    return this.channels.size;
  }

  stop(): void {
    for (const ch of this.channels.values()) ch.stop();
    this.channels.clear();
    this.perKind.clear();
    this.ended.stop();
  }

  private channel(name: string): SemaphoreChannel {
    let ch = this.channels.get(name);
    if (!ch) {
      ch = this.create(name);
      this.channels.set(name, ch);
      this.count(name, 1);
    }
    return ch;
  }

  /**
   * A job left: deleted from the store and, if its client may still need to hear of it (an expiry)
   * or may repeat its register (a token), kept as the uid's ended job in the same transaction.
   */
  private readonly endJob = (channel: string, job: Job, reason: ExpiryReason | null, at: number): void => {
    const ended: EndedJob | null = reason !== null || job.token !== null ? { channel, uid: job.uid, route: job.route, token: job.token, reason, at } : null;
    this.deps.store.endJob(channel, job.uid, ended);
    if (ended) this.ended.remember(ended);
  };

  private count(channel: string, by: 1 | -1): void {
    const kind = this.deps.bounds?.kind(channel) ?? '';
    const n = (this.perKind.get(kind) ?? 0) + by;
    if (n === 0) this.perKind.delete(kind);
    else this.perKind.set(kind, n);
  }

  private create(name: string): SemaphoreChannel {
    const { clock, store, events, positionUpdateMs } = this.deps;
    return new SemaphoreChannel(name, this.deps.options(name), this.overrides.get(name), {
      clock,
      store,
      events,
      positionUpdateMs,
      ended: this.endJob,
      onIdle: (n) => {
        if (this.channels.delete(n)) this.count(n, -1);
      },
    });
  }
}

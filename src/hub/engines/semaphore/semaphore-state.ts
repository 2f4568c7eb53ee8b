import type { SemInfo } from '../../../shared/messages.js';
import { SemaphoreChannel, type ChannelDeps, type ExpiryReason, type Job } from './channel.js';
import type { ChannelOptions } from './config.js';

export type { ExpiryReason, Job, SemaphoreEvents } from './channel.js';

export type NewJob = { uid: string; route: string; timeoutMs: number; queueTimeoutMs?: number };

/** What every channel shares (onIdle is the state's own), and each channel's options. */
export type StateDeps = Omit<ChannelDeps, 'onIdle'> & { options(channel: string): ChannelOptions };

/**
 * Every channel of the semaphore, without any MQTT: channels are made on first use and dropped
 * as soon as they hold nothing, so idle channels cost no memory and no timers. Concurrency
 * overrides outlive their channel (they are tiny) and are stored.
 */
export class SemaphoreState {
  private readonly channels = new Map<string, SemaphoreChannel>();
  private readonly overrides = new Map<string, number>();

  constructor(private readonly deps: StateDeps) {}

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
    for (const ch of [...this.channels.values()]) ch.resume();
  }

  /** 'duplicate' when the uid already holds a slot or a queue place in this channel. */
  register(channel: string, job: NewJob): 'granted' | 'queued' | 'duplicate' {
    const ch = this.channel(channel);
    if (ch.has(job.uid)) return 'duplicate';
    const now = this.deps.clock.now();
    const stored: Job = {
      uid: job.uid,
      route: job.route,
      timeoutMs: job.timeoutMs,
      registeredAt: now,
      queueDeadline: job.queueTimeoutMs === undefined ? null : now + job.queueTimeoutMs,
      grantedAt: null,
    };
    return ch.register(stored);
  }

  /** Finished or aborted: frees the slot or the queue place; says which it held, null when the uid is not there. */
  remove(channel: string, uid: string): 'working' | 'waiting' | null {
    return this.channels.get(channel)?.remove(uid) ?? null;
  }

  holds(channel: string, uid: string): 'working' | 'waiting' | null {
    return this.channels.get(channel)?.holds(uid) ?? null;
  }

  /** The hub withdraws a job itself; its client gets an `expired` event with the reason. */
  evict(channel: string, uid: string, reason: ExpiryReason): boolean {
    return this.channels.get(channel)?.evict(uid, reason) ?? false;
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

  get activeChannels(): number {
    return this.channels.size;
  }

  stop(): void {
    for (const ch of this.channels.values()) ch.stop();
    this.channels.clear();
  }

  private channel(name: string): SemaphoreChannel {
    let ch = this.channels.get(name);
    if (!ch) {
      ch = this.create(name);
      this.channels.set(name, ch);
    }
    return ch;
  }

  private create(name: string): SemaphoreChannel {
    const { options, ...shared } = this.deps;
    return new SemaphoreChannel(name, options(name), this.overrides.get(name), { ...shared, onIdle: (n) => this.channels.delete(n) });
  }
}

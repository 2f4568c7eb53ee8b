import { check, SCHEMA_VERSION } from '../../../shared/messages.js';
import { decodeSemConcurrency, decodeSemUid, SemRegister, type SemErrorCode, type SemErrorEvent, type SemExpired, type SemGo, type SemInfo, type SemQueued } from '../../../shared/contract/semaphore-messages.js';
import { semaphoreFilters, semaphoreRetainedFilters, semaphoreRootErrorTopic, semaphoreTopic } from '../../../shared/topics.js';
import { publishAndForget, type Engine, type EngineContext } from '../engine.js';
import { channelOptionsResolver, type ChannelOptions, type SemaphoreConfig } from './config.js';
import { isKeptExpiry, SemaphoreState, type ExpiryReason, type Job, type KeptExpiry, type SemaphoreEvents } from './semaphore-state.js';
import { SqliteSemaphoreStore } from './store.js';
import { GroupCommit } from './group-commit.js';
import { parseSemaphoreTopic } from './topic.js';
import { TableBound } from '../table-bound.js';

/** How a job left its channel: ended by its client, or taken back by the hub. */
export type JobEnd = 'finished' | 'aborted' | ExpiryReason;

/** Follows the jobs of claimed channels, for an engine built on the semaphore (rollouts). */
export type ChannelObserver = {
  registered(channel: string, uid: string): void;
  granted(channel: string, uid: string): void;
  ended(channel: string, uid: string, how: JobEnd, held: 'working' | 'waiting'): void;
};

type Claim = { prefix: string; options: ChannelOptions; observer: ChannelObserver };

/**
 * The MQTT side of the semaphore: parses coordinosaur topics and payloads, hands them to
 * SemaphoreState and publishes what it reports. A bad message is answered with an error event
 * and changes nothing.
 */
export class SemaphoreEngine implements Engine {
  readonly name = 'semaphore';
  readonly subscriptions: readonly string[];
  private readonly state: SemaphoreState;
  private readonly claims: Claim[] = [];
  private readonly overrides: TableBound;
  /**
   * This turn's commit, shared with the engine that claims channels (rollouts): its rows go into
   * the same transaction as the grants they follow from, and its messages wait for it as the go's do.
   */
  readonly commit: GroupCommit;
  private stopped = false;

  constructor(
    private readonly ctx: EngineContext,
    private readonly config: SemaphoreConfig,
  ) {
    this.subscriptions = semaphoreFilters(config.prefix);
    const configured = channelOptionsResolver(config);
    const bound = (table: string, key: 'maxChannels' | 'maxJobsPerChannel' | 'maxEndedJobs', past?: string) => new TableBound(ctx, `semaphore ${table}`, `engines.semaphore.${key}`, config[key], past);
    this.overrides = bound('channels with a concurrency override', 'maxChannels');
    this.commit = new GroupCommit(ctx.db, ctx.batch, (err, withheld) => ctx.log.error({ err, withheld }, 'semaphore (or rollout) state not stored; its messages are not sent'));
    this.state = new SemaphoreState({
      options: (channel) => this.claimOf(channel)?.options ?? configured(channel),
      clock: ctx.clock,
      store: new SqliteSemaphoreStore(ctx.db, (write) => this.commit.write(write)),
      events: this.events,
      positionUpdateMs: config.positionUpdateMs,
      keepEndedMs: config.retainExpiredSeconds * 1000,
      bounds: {
        channels: bound('channels holding jobs', 'maxChannels'),
        jobs: bound('jobs of one channel', 'maxJobsPerChannel'),
        ended: bound('ended jobs kept', 'maxEndedJobs', 'the oldest forgotten early'),
        // Claimed channels (rollouts) and the rest are bounded apart: a flood of one cannot close the other.
        kind: (channel) => this.claimOf(channel)?.prefix ?? '',
      },
    });
  }

  get prefix(): string {
    return this.config.prefix;
  }

  /**
   * Hands every channel whose name starts with `prefix` to another engine: its options replace the
   * configured ones and `observer` hears of each job. Call before start.
   */
  claimChannels(prefix: string, options: ChannelOptions, observer: ChannelObserver): void {
    this.claims.push({ prefix, options, observer });
  }

  setConcurrency(channel: string, max: number | null): void {
    this.state.setConcurrency(channel, max);
  }

  evict(channel: string, uid: string, reason: ExpiryReason): boolean {
    return this.state.evict(channel, uid, reason);
  }

  info(channel: string): Omit<SemInfo, 'v'> {
    return this.state.info(channel);
  }

  /** The channels holding jobs whose names start with `prefix` (a claim's). */
  channelsStartingWith(prefix: string): string[] {
    return this.state.channelsStartingWith(prefix);
  }

  /** Each channel holding jobs, with its holders and queue length. */
  occupancy(): { channel: string; holders: number; queued: number }[] {
    return this.state.occupancy();
  }

  private claimOf(channel: string): Claim | undefined {
    return this.claims.find((c) => channel.startsWith(c.prefix));
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.state.load();
    if (this.state.activeChannels) this.ctx.log.info({ channels: this.state.activeChannels }, 'semaphore state restored');
    // Not awaited: clients are served meanwhile, and each copy is compared with the state as it is then.
    this.ctx.readRetained?.(semaphoreRetainedFilters(this.config.prefix), (topic, payload) => {
      const t = parseSemaphoreTopic(this.config.prefix, topic);
      if (t.kind === 'retained' && !this.stopped) this.reconcile(topic, t.route, t.channel, t.output, t.uid, payload);
    }).catch((err: unknown) => this.ctx.log.warn({ err: (err as Error).message }, 'semaphore retained messages not checked'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.state.stop();
    this.commit.flush();
  }

  handle(topic: string, payload: Buffer): void {
    const t = parseSemaphoreTopic(this.config.prefix, topic);
    if (t.kind === 'own' || t.kind === 'retained') return;
    if (t.kind === 'bad') return this.reject(t.route, t.channel, topic, t.code, t.error);
    const { route, channel } = t;
    switch (t.action) {
      case 'register':
        return this.register(route, channel, topic, payload);
      case 'finished':
      case 'aborted': {
        const uid = decodeSemUid(payload);
        if (!uid.ok) return this.reject(route, channel, topic, 'bad-payload', `expected the job uid as payload: ${uid.error}`);
        const held = this.state.holds(channel, uid.value);
        // In a claimed channel, withdrawing what is not there is how a client re-registers safely
        // (SemaphoreClient `replace`): answering it would reach every client of the channel.
        if (!held && t.action === 'aborted' && this.claimOf(channel)) return;
        if (!held) {
          return this.reject(route, channel, topic, 'unknown-uid', `no job "${uid.value}" is working or waiting in channel "${channel}"`, uid.value);
        }
        // The owner hears first: it may close the channel before the freed slot is granted.
        this.claimOf(channel)?.observer.ended(channel, uid.value, t.action, held);
        this.state.remove(channel, uid.value);
        this.ctx.log.debug({ channel, uid: uid.value, action: t.action }, 'semaphore job ended');
        return;
      }
      case 'concurrency/set': {
        const max = decodeSemConcurrency(payload);
        if (!max.ok) return this.reject(route, channel, topic, 'bad-payload', max.error);
        // The claiming engine sets these limits in-process; over MQTT it would be someone else
        // (mosquitto's ACL cannot tell rollout channels from the others).
        if (this.claimOf(channel)) return this.reject(route, channel, topic, 'not-allowed', `the hub sets the limit of channel "${channel}" itself`);
        if (max.value !== null && !this.state.hasOverride(channel) && !this.overrides.admits(this.state.overrideCount, channel)) return this.reject(route, channel, topic, 'table-full', this.overrides.full);
        this.state.setConcurrency(channel, max.value);
        this.ctx.log.info({ channel, max: max.value }, 'semaphore concurrency set');
        return;
      }
      case 'infos': {
        const info: SemInfo = { v: SCHEMA_VERSION, ...this.state.info(channel) };
        return this.send(semaphoreTopic(route, channel, 'infos/reply'), JSON.stringify(info));
      }
    }
  }

  private register(route: string, channel: string, topic: string, payload: Buffer): void {
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      return this.reject(route, channel, topic, 'bad-json', `register payload is not valid JSON: ${(err as Error).message}`);
    }
    const uidHint = typeof (json as { uid?: unknown })?.uid === 'string' ? (json as { uid: string }).uid : undefined;
    const reg = check(SemRegister, json);
    if (!reg.ok) return this.reject(route, channel, topic, 'bad-payload', `register payload: ${reg.error}`, uidHint);
    const { uid, timeout, queueTimeout, token } = reg.value;
    const outcome = this.state.register(channel, {
      uid,
      route,
      timeoutMs: timeout * 1000,
      queueTimeoutMs: queueTimeout === undefined ? undefined : queueTimeout * 1000,
      token,
    });
    if (typeof outcome === 'object') return this.reject(route, channel, topic, 'table-full', `job "${uid}" not registered: ${outcome.full}`, uid);
    if (outcome === 'duplicate') {
      return this.reject(route, channel, topic, 'duplicate-uid', `job "${uid}" already holds a slot or a queue place in channel "${channel}"`, uid);
    }
    this.ctx.log.debug({ channel, uid, outcome }, 'semaphore job registered');
    // A repeated register (same token) changes nothing: its retained go or expired answers it.
    if (outcome !== 'repeat') this.claimOf(channel)?.observer.registered(channel, uid);
  }

  /**
   * A go or expired the broker kept (an external broker outlives the hub; so may a persistent
   * embedded one) must say what the state says: what it should not say is corrected or cleared.
   * Compared at handling time, so a copy older than a later publish is fixed too.
   */
  private reconcile(topic: string, route: string, channel: string, output: 'go' | 'expired', uid: string, payload: Buffer): void {
    let want = '';
    if (output === 'go') {
      const job = this.state.job(channel, uid);
      if (job && job.grantedAt !== null && job.route === route) want = goPayload(job);
    } else {
      const ended = this.state.endedJob(channel, uid);
      if (ended && isKeptExpiry(ended) && ended.route === route) want = expiredPayload(ended);
    }
    // A go of a rollout channel is signed: compared by what the hub signed, and corrected when not the hub's.
    const got = this.ctx.unseal ? this.ctx.unseal(topic, payload) : payload;
    if (got?.toString('utf8') === want) return;
    this.ctx.log.info({ topic, cleared: want === '' }, 'semaphore retained message corrected');
    this.retain(topic, want);
  }

  /**
   * Replies go to the prefix style (with or without "/") the job's client used. A go stays
   * retained while its job holds the slot, so a client that (re)subscribes hears it; an expired
   * while the state keeps the ended job. An empty retained message clears either.
   */
  private readonly events: SemaphoreEvents = {
    granted: (channel, job) => {
      const topic = semaphoreTopic(job.route, channel, 'go', job.uid);
      const payload = goPayload(job);
      // A client that finished and registered again under its uid (no token) in one read: the go
      // it held is cleared and published again, the same bytes, in one commit. The clear is
      // dropped: the broker keeps the go throughout, and a live subscriber hears only the new one.
      this.commit.withdraw(clearOf(topic, payload));
      this.retain(topic, payload);
      this.claimOf(channel)?.observer.granted(channel, job.uid);
    },
    restored: (channel, job) => this.retain(semaphoreTopic(job.route, channel, 'go', job.uid), goPayload(job)),
    queued: (channel, job, position, waiting) => {
      const msg: SemQueued = { v: SCHEMA_VERSION, uid: job.uid, ...(job.token !== null && { token: job.token }), position, waiting };
      this.send(semaphoreTopic(job.route, channel, 'queued', job.uid), JSON.stringify(msg));
    },
    released: (channel, job) => {
      if (job.grantedAt !== null) this.clearGo(channel, job);
    },
    expired: (channel, job, reason, at) => {
      this.ctx.log.info({ channel, uid: job.uid, reason }, 'semaphore job expired');
      // Before the go is cleared: a client seeing its go cleared with no expired first knows the hub lost its job.
      this.retain(semaphoreTopic(job.route, channel, 'expired', job.uid), expiredPayload({ uid: job.uid, token: job.token, reason, at }));
      if (job.grantedAt !== null) this.clearGo(channel, job);
      this.claimOf(channel)?.observer.ended(channel, job.uid, reason, heldBy(job));
    },
    keptExpiry: (job) => this.retain(semaphoreTopic(job.route, job.channel, 'expired', job.uid), expiredPayload(job)),
    forgotExpiry: (job) => this.retain(semaphoreTopic(job.route, job.channel, 'expired', job.uid), ''),
  };

  private reject(route: string, channel: string | undefined, topic: string, code: SemErrorCode, error: string, uid?: string): void {
    this.ctx.log.debug({ topic, code, error }, 'semaphore message rejected');
    const msg: SemErrorEvent = { v: SCHEMA_VERSION, code, error, ...(uid !== undefined && { uid }), topic };
    this.send(channel === undefined ? semaphoreRootErrorTopic(route) : semaphoreTopic(route, channel, 'error'), JSON.stringify(msg));
  }

  /** Every message waits for the commit of the changes made before it (see GroupCommit). */
  private send(topic: string, payload: string): void {
    this.commit.send(() => publishAndForget(this.ctx, this.name, topic, payload));
  }

  /**
   * Publishes retained; an empty payload clears the topic. Always QoS 1, as the other events: aedes
   * may deliver a QoS 0 message ahead of a QoS 1 one published just before it, and then drops the
   * older one for that client as a duplicate.
   */
  private retain(topic: string, payload: string, key?: string): void {
    this.commit.send(() => publishAndForget(this.ctx, this.name, topic, payload, { qos: 1, retain: true }), key);
  }

  private clearGo(channel: string, job: Job): void {
    const topic = semaphoreTopic(job.route, channel, 'go', job.uid);
    this.retain(topic, '', clearOf(topic, goPayload(job)));
  }
}

/** Names the clear of the go `payload` on `topic`, which a grant of the same bytes in the same commit withdraws. */
const clearOf = (topic: string, payload: string) => `${topic}\u0000${payload}`;

/** The seed's go is the raw uid; a registration that sent a token gets it back, so its client can tell its own go. */
function goPayload(job: Job): string {
  if (job.token === null) return job.uid;
  const msg: SemGo = { v: SCHEMA_VERSION, uid: job.uid, token: job.token };
  return JSON.stringify(msg);
}

/** Built the same way from a live expiry and from a kept one, so a retained copy compares equal. */
function expiredPayload(job: Pick<KeptExpiry, 'uid' | 'token' | 'reason' | 'at'>): string {
  const msg: SemExpired = { v: SCHEMA_VERSION, uid: job.uid, reason: job.reason, at: new Date(job.at).toISOString(), ...(job.token !== null && { token: job.token }) };
  return JSON.stringify(msg);
}

const heldBy = (job: Job): 'working' | 'waiting' => (job.grantedAt === null ? 'waiting' : 'working');

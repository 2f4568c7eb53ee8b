import { TopicContract } from '../../../shared/contract/topic-table.js';
import { collectAgentMessage, emptySnapshot, type FleetBound } from '../../../shared/fleet.js';
import { RolloutControl, type AgentDirective, type RolloutReply, type RolloutSettings, type RolloutSnapshot, type RolloutStatus } from '../../../shared/contract/rollout-messages.js';
import { decode, PushMessage, SCHEMA_VERSION } from '../../../shared/messages.js';
import {
  AGENT_APPS_ALL,
  AGENT_STATUS_ALL,
  agentPinTopic,
  agentRollbackTopic,
  ROLLOUT_CHANNEL_PREFIX,
  ROLLOUT_CONTROL,
  ROLLOUT_SETTINGS,
  rolloutChannel,
  rolloutEventsTopic,
  rolloutId,
  rolloutReplyTopic,
  rolloutStateTopic,
} from '../../../shared/topics.js';
import { pushedSha } from '../../../shared/push-match.js';
import { publishAndForget, type Engine, type EngineContext } from '../engine.js';
import { TableBound } from '../table-bound.js';
import type { ChannelObserver, JobEnd, SemaphoreEngine } from '../semaphore/semaphore-engine.js';
import type { RolloutsConfig } from './config.js';
import type { GitHubDeployments } from './github-deployments.js';
import { envOf, planPush } from './plan.js';
import { DeadlineQueue } from './deadlines.js';
import { Rollout } from './rollout.js';
import { RolloutRepos } from './rollout-repos.js';
import { SnapshotPacer } from './snapshot-pacer.js';
import { RolloutStore } from './store.js';

const contract = new TopicContract();
/** Pushes as the hub publishes them: `github/{owner}/{repo}`. */
const PUSHES = contract.specs.find((s) => s.name === 'push')!.pattern.filter();
/** A large snapshot is rewritten no faster than this, so it alone never floods the broker's store and subscribers. */
const SNAPSHOT_BYTES_PER_SECOND = 1024 * 1024;
/** No host's JSON in a snapshot is shorter (name, SHA, flags): past snapshotMaxBytes by this estimate, it is not even built. */
const MIN_HOST_BYTES = 120;
const hostKey = (id: string, agent: string) => `${id}\u0000${agent}`;

/**
 * Rollouts: each push becomes one rollout per app × environment, and hosts are admitted through
 * the semaphore channel `pushfleet-rollout.{id}`, whose limit this engine sets from the
 * rollout's decisions (Rollout). It learns the fleet from the agents' retained status and app
 * state, and takes pause/resume/abort/freeze/pin requests on `pushfleet/rollouts/control`.
 */
export class RolloutsEngine implements Engine {
  readonly name = 'rollouts';
  readonly subscriptions = [PUSHES, AGENT_STATUS_ALL, AGENT_APPS_ALL, ROLLOUT_CONTROL];
  private readonly fleet = emptySnapshot();
  private readonly rolloutRepos = new RolloutRepos();
  private readonly store: RolloutStore;
  /** Rollouts under way, and ended ones a late host touched. */
  private readonly live = new Map<string, Rollout>();
  private readonly admitted = new Map<string, number>();
  /** Timers of channels of unknown rollouts (withdrawUnknown). */
  private readonly timers = new Map<string, unknown>();
  /** When each updating host times out (hostKey), run by one timer set for the earliest. */
  private readonly deadlines = new DeadlineQueue<string>();
  private deadlineTimer: { handle: unknown; at: number } | undefined;
  private readonly pacer: SnapshotPacer;
  private frozen: string[] = [];
  private readonly bounds: Record<'agents' | 'apps' | 'pins' | 'frozen', TableBound>;
  private readonly fleetBound: FleetBound;

  constructor(
    private readonly ctx: EngineContext,
    private readonly config: RolloutsConfig,
    private readonly semaphore: SemaphoreEngine,
    private readonly github?: GitHubDeployments,
    /** The retained heads the hub keeps (HeadStore), to recover pushes it missed. */
    private readonly heads?: { list(): { payload: string }[] },
  ) {
    this.store = new RolloutStore(ctx.db);
    this.pacer = new SnapshotPacer(ctx.clock, { intervalMs: config.snapshotIntervalMs, bytesPerSecond: SNAPSHOT_BYTES_PER_SECOND });
    const bound = (table: string, key: 'maxAgents' | 'maxAppsPerAgent' | 'maxPins' | 'maxFrozen', past?: string) =>
      new TableBound(ctx, `rollouts ${table}`, `engines.rollouts.${key}`, config[key], past);
    this.bounds = {
      agents: bound('agents followed', 'maxAgents', 'new agents ignored'),
      apps: bound('apps followed of one agent', 'maxAppsPerAgent', 'new apps ignored'),
      pins: bound('pins', 'maxPins'),
      frozen: bound('frozen environments', 'maxFrozen'),
    };
    this.fleetBound = (table, size, entry) => this.bounds[table].admits(size, entry);
    // Closed until this engine opens them: an agent that hears of a push first just waits.
    semaphore.claimChannels(ROLLOUT_CHANNEL_PREFIX, { maxConcurrentJobs: 0, timeoutOffset: 0, quotas: [] }, this.observer);
  }

  async start(): Promise<void> {
    this.frozen = this.store.frozen();
    for (const snap of this.store.active()) {
      const r = this.load(snap);
      this.live.set(r.id, r);
      this.catchUpGrants(r);
      this.commit(r, true);
    }
    if (this.live.size) this.ctx.log.info({ rollouts: [...this.live.keys()] }, 'rollouts resumed');
    for (const channel of this.semaphore.channelsStartingWith(ROLLOUT_CHANNEL_PREFIX)) if (!this.find(channel.slice(ROLLOUT_CHANNEL_PREFIX.length))) this.withdrawUnknown(channel);
    this.publishSettings();
  }

  /** The rollouts of the history (engines.rollouts.history) per status, as stored now. */
  statusCounts(): Partial<Record<RolloutStatus, number>> {
    return this.stored().statusCounts();
  }

  /**
   * The store, for a read: the changes of this turn (written with the semaphore's in the hub's
   * per-turn commit) are committed first, so it says what the engine has decided. Rare: rollouts
   * under way are read from memory.
   */
  private stored(): RolloutStore {
    this.commitTurn();
    return this.store;
  }

  /** Commits this turn's pending writes (the hub's per-turn commit, shared with the semaphore) now. */
  private commitTurn(): void {
    if (this.semaphore.commit.pending) this.semaphore.commit.flush();
  }

  async stop(): Promise<void> {
    for (const t of this.timers.values()) this.ctx.clock.clearTimeout(t);
    this.timers.clear();
    if (this.deadlineTimer) this.ctx.clock.clearTimeout(this.deadlineTimer.handle);
    this.deadlineTimer = undefined;
    this.deadlines.clear();
    // The retained snapshots say the last state before the hub goes.
    this.pacer.flush();
    this.pacer.stop();
    this.semaphore.commit.flush();
    await this.github?.idle();
  }

  /**
   * A host the semaphore granted whose row does not say so: the hub stopped between the grant
   * (stored and published by the semaphore) and the host's row. Without this its result would be
   * ignored (it would not be updating here) and the rollout would wait for it forever.
   */
  private catchUpGrants(r: Rollout): void {
    const now = this.ctx.clock.now();
    for (const w of this.semaphore.info(rolloutChannel(r.id)).working) {
      if (r.host(w.uid)?.state === 'updating') continue;
      this.ctx.log.info({ rollout: r.id, agent: w.uid }, 'host granted before the hub stopped: counted as updating');
      r.granted(w.uid, this.fromSha(w.uid, r.snap.app), now);
    }
  }

  handle(topic: string, payload: Buffer): void {
    if (topic === ROLLOUT_CONTROL) return this.onControl(payload);
    const found = contract.lookup(topic);
    if (found?.spec.name === 'push') return this.onPush(`${found.params.owner}/${found.params.repo}`, topic, payload);
    const msg = collectAgentMessage(this.fleet, topic, payload, this.fleetBound);
    if (!msg) return;
    const { agent } = msg;
    if (msg.app !== undefined) this.rolloutRepos.set(agent, msg.app, this.fleet.agents.get(agent)?.apps.get(msg.app));
    if (msg.kind === 'status' && this.fleet.agents.get(agent)?.status?.state === 'offline') {
      this.eachLive((r) => r.offline(agent, this.ctx.clock.now()));
    } else if (msg.kind === 'app') {
      this.sendBackIfMissed(agent, msg.app!);
    }
  }

  /**
   * A rollback is not retained: an agent that was offline when its rollout aborted comes back on
   * the aborted SHA. Its app state says so, and it is sent back again.
   */
  private sendBackIfMissed(agent: string, appName: string): void {
    const entry = this.fleet.agents.get(agent);
    const app = entry?.apps.get(appName);
    // updating and retrying are still on their way (an interrupted update is redone as updating).
    if (!entry || !app?.sha || app.state === 'updating' || app.state === 'retrying' || !app.rollout) return;
    // Every app state comes here: one row of the rollout, not the whole of an ended one.
    const id = rolloutId(app.app, envOf(entry), app.sha);
    const live = this.live.get(id);
    if ((live?.snap.status ?? this.stored().status(id)) !== 'aborted') return;
    const h = live ? live.host(agent) : this.stored().host(id, agent);
    if (h?.state === 'rolled-back' && h.fromSha && h.fromSha !== app.sha) this.sendBack(id, app.app, agent, h.fromSha);
  }

  private onPush(repo: string, topic: string, payload: Buffer): void {
    // Most pushes concern no app in a rollout: skip decoding them (7 KB through zod, per push).
    if (!this.rolloutRepos.has(repo)) return;
    const d = decode(PushMessage, payload);
    if (!d.ok) {
      this.ctx.log.warn({ topic, error: d.error }, 'ignored malformed push message');
      return;
    }
    this.plan(d.value);
  }

  /** Plans a push: one rollout per app × environment, superseding older ones. */
  private plan(push: PushMessage): void {
    const plan = planPush(this.fleet, push, this.settings());
    const now = this.ctx.clock.now();
    for (const planned of plan.rollouts) {
      if (this.find(planned.id)) continue; // the same SHA again (a re-push or a redelivery)
      for (const older of this.live.values()) {
        if (older.snap.app === planned.app && older.snap.env === planned.env && !older.ended) {
          older.supersede(now, planned.id);
          this.commit(older);
        }
      }
      const r = Rollout.create(planned, { repo: push.repo, ref: push.ref, deliveryId: push.deliveryId, pusher: push.pusher.name }, now);
      this.live.set(r.id, r);
      // Agents that heard of the push before this engine did are already queued in the channel.
      for (const w of this.semaphore.info(rolloutChannel(r.id)).waiting) r.queued(w.uid, this.fromSha(w.uid, r.snap.app), now);
      this.ctx.log.info({ rollout: r.id, sha: r.snap.sha, hosts: r.snap.hosts.length, status: r.snap.status }, 'rollout planned');
      this.commit(r);
      for (const id of this.stored().prune(this.config.history)) {
        this.pacer.forget(id);
        this.publish(rolloutStateTopic(id), '', true);
      }
    }
    if (plan.rollouts.length === 0 && plan.immediate.length === 0) this.ctx.log.debug({ repo: push.repo, ref: push.ref }, 'push updates no managed app');
  }

  /** The semaphore's view of the rollout channels. */
  private readonly observer: ChannelObserver = {
    registered: (channel, uid) => {
      if (!this.onHost(channel, (r, now) => r.queued(uid, this.fromSha(uid, r.snap.app), now))) this.withdrawUnknown(channel);
    },
    granted: (channel, uid) => this.onHost(channel, (r, now) => r.granted(uid, this.fromSha(uid, r.snap.app), now)),
    ended: (channel, uid, how, held) => this.onHost(channel, (r, now) => this.ended(r, uid, how, held, now)),
  };

  private ended(r: Rollout, agent: string, how: JobEnd, held: 'working' | 'waiting', now: number): void {
    if (held === 'waiting') return r.withdrew(agent, now);
    if (how === 'finished') return r.succeeded(agent, now);
    if (how === 'timeout') return r.failed(agent, 'timed-out', `no result within ${r.snap.policy.hostTimeout} s`, false, now);
    // The agent publishes its app state before it gives the slot back: read the outcome there.
    const app = this.fleet.agents.get(agent)?.apps.get(r.snap.app);
    const error = app?.lastError ? `${app.lastError.step}: ${app.lastError.message}` : 'the update failed';
    r.failed(agent, 'failed', error, app?.state === 'rolled-back', now);
  }

  /** Applies `change` to the channel's rollout; false when no rollout is known for it. */
  private onHost(channel: string, change: (r: Rollout, now: number) => void): boolean {
    const id = channel.slice(ROLLOUT_CHANNEL_PREFIX.length);
    const r = this.find(id);
    if (!r) {
      this.recoverMissedPush(id);
      this.ctx.log.debug({ channel, planned: this.live.has(id) }, 'host waits in a channel of no known rollout');
      return this.live.has(id);
    }
    this.live.set(id, r);
    change(r, this.ctx.clock.now());
    this.commit(r);
    return true;
  }

  /**
   * Hosts waiting in the channel of a rollout still unknown after unknownRolloutWait are sent
   * away (expired: cancelled): nothing would ever open the channel. One timer per channel, so a
   * flood of uids costs no more timers than the channels the semaphore bounds.
   */
  private withdrawUnknown(channel: string): void {
    const key = `unknown\u0000${channel}`;
    if (this.timers.has(key)) return;
    const waitMs = this.config.unknownRolloutWait * 1000;
    const waiting = this.semaphore.info(channel).waiting;
    if (waiting.length === 0) return;
    const oldest = Math.min(...waiting.map((w) => Date.parse(w.registeredAt)));
    this.timers.set(
      key,
      this.ctx.clock.setTimeout(() => {
        this.timers.delete(key);
        if (this.find(channel.slice(ROLLOUT_CHANNEL_PREFIX.length))) return;
        const now = this.ctx.clock.now();
        const due = this.semaphore.info(channel).waiting.filter((w) => Date.parse(w.registeredAt) + waitMs <= now);
        if (due.length) this.ctx.log.info({ channel, hosts: due.length }, 'hosts withdrawn from the channel of an unknown rollout');
        for (const w of due) this.semaphore.evict(channel, w.uid, 'cancelled');
        this.withdrawUnknown(channel);
      }, Math.max(0, oldest + waitMs - this.ctx.clock.now())),
    );
  }

  /**
   * An agent waits for a rollout this hub never planned: the push reached the broker while the hub
   * was down (a post-receive hook, an external broker). Its retained head, which the heads engine
   * kept, is planned now. Only the newest head of a ref counts, so an old SHA is never revived.
   */
  private recoverMissedPush(id: string): void {
    const sha12 = id.slice(id.lastIndexOf('.') + 1);
    for (const head of this.heads?.list() ?? []) {
      const d = decode(PushMessage, head.payload);
      if (!d.ok || !pushedSha(d.value).startsWith(sha12)) continue;
      this.ctx.log.info({ rollout: id, repo: d.value.repo, ref: d.value.ref }, 'planning a push the hub missed, from its retained head');
      this.plan(d.value);
    }
  }

  private onControl(payload: Buffer): void {
    const d = decode(RolloutControl, payload);
    if (!d.ok) {
      // Without a valid requestId there is nowhere to answer: the CLI validates before sending.
      this.ctx.log.warn({ error: d.error }, 'ignored malformed rollout control request');
      return;
    }
    this.publish(rolloutReplyTopic(d.value.requestId), JSON.stringify(this.control(d.value)), false);
  }

  /**
   * Carries out one control request (from `pushfleet rollout …` over MQTT, or the REST API
   * in-process) and answers it; every change is stored before this returns.
   */
  control(req: RolloutControl): RolloutReply {
    const reply = this.carryOut(req);
    this.commitTurn();
    return reply;
  }

  private carryOut(req: RolloutControl): RolloutReply {
    const now = this.ctx.clock.now();
    const reply = (error: string | null, extra: Partial<RolloutReply> = {}): RolloutReply => ({ v: SCHEMA_VERSION, requestId: req.requestId, ok: error === null, error, ...extra });
    this.ctx.log.info({ op: req.op, by: req.by, ...('id' in req && { rollout: req.id }), ...('env' in req && { env: req.env }) }, 'rollout control');
    switch (req.op) {
      case 'list':
        return reply(null, { rollouts: this.stored().recent(req.limit).map(({ hosts: _hosts, policy: _policy, hostsOmitted: _omitted, ...rest }) => rest) });
      case 'pause':
      case 'resume':
      case 'abort': {
        const r = this.find(req.id);
        if (!r) return reply(`no rollout ${req.id}: see "pushfleet rollout list"`);
        const error = req.op === 'abort' ? r.abort(now, `aborted by ${req.by}`) : r[req.op](now);
        this.commit(r);
        return reply(error);
      }
      case 'freeze':
      case 'unfreeze': {
        if (req.op === 'freeze' && !this.frozen.includes(req.env) && !this.bounds.frozen.admits(this.frozen.length, req.env)) return reply(this.bounds.frozen.full);
        if (req.op === 'freeze') this.store.freeze(req.env, req.by, new Date(now).toISOString());
        else this.store.unfreeze(req.env);
        this.frozen = this.store.frozen();
        this.eachLive((r) => r.snap.env === req.env && (req.op === 'freeze' ? r.freeze(now) : r.unfreeze(now)));
        this.publishSettings();
        this.ctx.changed?.('rollouts');
        return reply(null);
      }
      case 'pin':
      case 'unpin': {
        if (req.op === 'pin' && !this.store.isPinned(req.agent, req.app) && !this.bounds.pins.admits(this.store.pinCount, `${req.agent}/${req.app}`)) return reply(this.bounds.pins.full);
        const at = new Date(now).toISOString();
        if (req.op === 'pin') this.store.pin({ agent: req.agent, app: req.app, sha: req.sha, by: req.by, at });
        else this.store.unpin(req.agent, req.app);
        const directive: AgentDirective = { v: SCHEMA_VERSION, kind: 'pin', app: req.app, sha: req.op === 'pin' ? req.sha : null, rolloutId: null, by: req.by, at };
        this.publish(agentPinTopic(req.agent, req.app), req.op === 'pin' ? JSON.stringify(directive) : '', true);
        if (req.op === 'pin') this.eachLive((r) => r.snap.app === req.app && r.leaveOut(req.agent, now, `pinned to ${req.sha.slice(0, 8)} by ${req.by}`));
        return reply(null);
      }
    }
  }

  /** The history as the REST API reads it: newest first, one rollout whole, the frozen environments. */
  readonly history = {
    recent: (offset: number, limit: number) => ({ items: this.stored().recent(limit, offset), total: this.store.size }),
    get: (id: string): RolloutSnapshot | undefined => this.stored().get(id),
    frozen: (): string[] => [...this.frozen],
  };

  /**
   * Stores what changed, then applies the rollout's effects: its rows go into this turn's commit,
   * the semaphore's, before any go, eviction or event they allow is published (every message of
   * both engines waits for it); the semaphore limit before the evictions, so an eviction never
   * lets the old limit grant. The retained snapshot follows at the pacer's rate (at once for a
   * status change, or `urgent`); the events carry every change meanwhile.
   */
  private commit(r: Rollout, urgent = false): void {
    const channel = rolloutChannel(r.id);
    const changes = r.takeChanges();
    this.semaphore.commit.write(this.store.saving({ snap: r.snap, rollout: changes.rollout, hosts: [...changes.hosts].map((agent) => ({ pos: r.position(agent)!, host: r.host(agent)! })) }));
    this.admit(r);
    for (const effect of r.takeEffects()) {
      if (effect.kind === 'evict') this.semaphore.evict(channel, effect.agent, 'cancelled');
      else if (effect.kind === 'rollback') this.sendBack(r.id, r.snap.app, effect.agent, effect.sha);
      else this.publish(rolloutEventsTopic(r.id), JSON.stringify(effect.event), false);
    }
    for (const agent of changes.hosts) this.deadlines.set(hostKey(r.id, agent), r.deadlineOf(agent));
    this.armDeadline();
    // Kept while hosts still update: they count against the maxUnavailable of its successor.
    const done = r.ended && r.inState('updating') === 0;
    this.ctx.changed?.('rollouts', r.id);
    // A rollout leaving `live` is published at once: its pacer entry goes with it.
    this.pacer.changed(r.id, urgent || done || changes.rollout, () => this.publishSnapshot(r));
    if (!r.ended) return;
    if (done) {
      this.live.delete(r.id);
      this.admitted.delete(r.id);
      this.pacer.forget(r.id);
      // Back to the claim's closed default: no override row per rollout forever. A late host's
      // registration reopens the rollout, which sets the limit again.
      this.semaphore.setConcurrency(channel, null);
    }
    for (const s of this.siblings(r)) if (!s.ended) this.admit(s);
  }

  /**
   * The retained snapshot, with host counts; without its hosts past snapshotMaxBytes. Returns its
   * size, which paces the next one. GitHub hears of it at the same rate (it keys on the status).
   */
  private publishSnapshot(r: Rollout): number {
    const max = this.config.snapshotMaxBytes;
    const view: RolloutSnapshot = { ...r.snap, counts: r.counts(), hostsOmitted: 0 };
    const whole = r.snap.hosts.length * MIN_HOST_BYTES > max ? undefined : JSON.stringify(view);
    const payload = whole !== undefined && Buffer.byteLength(whole) <= max ? whole : JSON.stringify({ ...view, hosts: [], hostsOmitted: r.snap.hosts.length } satisfies RolloutSnapshot);
    this.publish(rolloutStateTopic(r.id), payload, true);
    if (this.github) this.semaphore.commit.send(() => this.github!.report(r.snap));
    return Buffer.byteLength(payload);
  }

  /** Sets the channel's limit: what the rollout allows, less hosts still updating for an earlier rollout of the same app and environment. */
  private admit(r: Rollout): void {
    const elsewhere = r.ended ? 0 : this.siblings(r).reduce((n, s) => n + (s.ended ? s.inState('updating') : 0), 0);
    const limit = Math.max(0, r.admission() - elsewhere);
    if (this.admitted.get(r.id) === limit) return;
    this.admitted.set(r.id, limit);
    this.semaphore.setConcurrency(rolloutChannel(r.id), limit);
  }

  private siblings(r: Rollout): Rollout[] {
    return [...this.live.values()].filter((s) => s !== r && s.snap.app === r.snap.app && s.snap.env === r.snap.env);
  }

  /** One timer, for the earliest deadline: set again only when that one changes. */
  private armDeadline(): void {
    const at = this.deadlines.next();
    if (at === this.deadlineTimer?.at) return;
    if (this.deadlineTimer) this.ctx.clock.clearTimeout(this.deadlineTimer.handle);
    this.deadlineTimer = at === undefined ? undefined : { at, handle: this.ctx.clock.setTimeout(() => this.timeOut(), Math.max(0, at - this.ctx.clock.now())) };
  }

  /** Hosts past hostTimeout are failed and their slots taken back. */
  private timeOut(): void {
    this.deadlineTimer = undefined;
    for (const key of this.deadlines.due(this.ctx.clock.now())) {
      const [id, agent] = key.split('\u0000') as [string, string];
      // Looked up again: an ended rollout is reloaded from the store on its next change.
      this.onHost(rolloutChannel(id), (cur, now) => cur.failed(agent, 'timed-out', `no result within ${cur.snap.policy.hostTimeout} s`, false, now));
      this.semaphore.evict(rolloutChannel(id), agent, 'timeout');
    }
    this.armDeadline();
  }

  private sendBack(id: string, app: string, agent: string, sha: string): void {
    const directive: AgentDirective = { v: SCHEMA_VERSION, kind: 'rollback', app, sha, rolloutId: id, by: 'rollouts', at: new Date(this.ctx.clock.now()).toISOString() };
    this.ctx.log.info({ rollout: id, agent, sha }, 'sending host back to its previous SHA');
    this.publish(agentRollbackTopic(agent), JSON.stringify(directive), false);
  }

  private find(id: string): Rollout | undefined {
    const live = this.live.get(id);
    if (live) return live;
    const stored = this.stored().get(id);
    return stored && this.load(stored);
  }

  /** A rollout from the store, with the deadlines of its updating hosts. */
  private load(snap: RolloutSnapshot): Rollout {
    const r = new Rollout(snap);
    if (r.inState('updating') > 0) for (const h of snap.hosts) this.deadlines.set(hostKey(r.id, h.agent), r.deadlineOf(h.agent));
    return r;
  }

  /** Applies `change` to every live rollout; only those it changed are stored and republished. */
  private eachLive(change: (r: Rollout) => unknown): void {
    for (const r of [...this.live.values()]) {
      change(r);
      if (r.changed) this.commit(r);
    }
  }

  private fromSha(agent: string, app: string): string | null {
    return this.fleet.agents.get(agent)?.apps.get(app)?.sha ?? null;
  }

  private settings(): Omit<RolloutSettings, 'v'> {
    return { defaults: this.config.defaults, policies: this.config.policies, frozen: this.frozen };
  }

  private publishSettings(): void {
    this.publish(ROLLOUT_SETTINGS, JSON.stringify({ v: SCHEMA_VERSION, ...this.settings() } satisfies RolloutSettings), true);
  }

  /** After this turn's commit: nothing goes out that the store does not say yet. */
  private publish(topic: string, payload: string, retain: boolean): void {
    this.semaphore.commit.send(() => publishAndForget(this.ctx, this.name, topic, payload, { qos: 1, retain }));
  }
}

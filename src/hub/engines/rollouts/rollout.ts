import { HOST_FAILED, ROLLOUT_ENDED, type HostCounts, type RolloutEvent, type RolloutHost, type RolloutHostState, type RolloutSnapshot, type RolloutStatus } from '../../../shared/contract/rollout-messages.js';
import { SCHEMA_VERSION } from '../../../shared/messages.js';
import type { PlannedRollout } from './plan.js';

/** What the engine must do after a change: publish an event, take a host out of the channel, send one back. */
export type RolloutEffect =
  | { kind: 'event'; event: RolloutEvent }
  | { kind: 'evict'; agent: string }
  | { kind: 'rollback'; agent: string; sha: string };

export type PushFacts = { repo: string; ref: string; deliveryId: string; pusher: string };

/** A completed rollout still lets a late host (back from offline) through; a cancelled one does not. */
const ADMITTING: readonly RolloutStatus[] = ['running', 'succeeded', 'failed'];
const ACTIVE: readonly RolloutHostState[] = ['pending', 'queued', 'updating'];
/** Hosts that may still join: not registered yet, back from offline, or unpinned after a pin left them out. */
const JOINABLE: readonly RolloutHostState[] = ['pending', 'offline', 'skipped'];

const iso = (ms: number) => new Date(ms).toISOString();
const short = (sha: string) => sha.slice(0, 8);

/** What changed since the last `takeChanges()`: the hosts (by agent) and whether the rollout's own fields did. */
export type RolloutChanges = { hosts: Set<string>; rollout: boolean };

/**
 * One rollout's decisions, without I/O: which hosts may start (the semaphore limit it wants),
 * when the canaries pass, when failures cross the threshold, what pause, abort and supersede
 * do. Every method takes `now`; the engine drains `takeEffects()` and `takeChanges()` after
 * each call. Each change is one numbered event (snap.seq is the last); hosts are indexed and
 * counted, so a change costs the same in a rollout of 10 hosts or 10,000.
 */
export class Rollout {
  private effects: RolloutEffect[] = [];
  private changes: RolloutChanges = { hosts: new Set(), rollout: false };
  /** Position of each agent in snap.hosts. */
  private readonly index = new Map<string, number>();
  private readonly states: Record<RolloutHostState, number> = { pending: 0, queued: 0, updating: 0, succeeded: 0, failed: 0, 'timed-out': 0, skipped: 0, offline: 0, 'rolled-back': 0 };
  private down = 0;
  private canaries = 0;
  private canariesSucceeded = 0;

  constructor(readonly snap: RolloutSnapshot) {
    snap.hosts.forEach((h, i) => {
      this.index.set(h.agent, i);
      this.count(h, 1);
    });
  }

  static create(plan: PlannedRollout, push: PushFacts, now: number): Rollout {
    const at = iso(now);
    const hosts = plan.targets.map((t): RolloutHost => ({ agent: t.agent, state: 'pending', canary: false, fromSha: t.fromSha, startedAt: null, endedAt: null, error: null, down: false }));
    const status: RolloutStatus = plan.frozen ? 'frozen' : 'running';
    const rollout = new Rollout({
      v: SCHEMA_VERSION,
      id: plan.id,
      app: plan.app,
      env: plan.env,
      sha: plan.sha,
      ...push,
      status,
      reason: plan.frozen ? `environment ${plan.env} is frozen: starts on unfreeze` : null,
      policy: plan.policy,
      hosts,
      createdAt: at,
      updatedAt: at,
      endedAt: null,
      seq: 0,
      hostsOmitted: 0,
    });
    rollout.event(null, status, `${hosts.length} hosts, ${plan.policy.batchSize} at a time after ${plan.policy.canary} canary`, null);
    rollout.changes = { hosts: new Set(hosts.map((h) => h.agent)), rollout: true };
    return rollout;
  }

  get id(): string {
    return this.snap.id;
  }

  get ended(): boolean {
    return ROLLOUT_ENDED.includes(this.snap.status);
  }

  /** Whether anything changed since the effects were last taken (every change leaves one). */
  get changed(): boolean {
    return this.effects.length > 0;
  }

  takeEffects(): RolloutEffect[] {
    const effects = this.effects;
    this.effects = [];
    return effects;
  }

  takeChanges(): RolloutChanges {
    const changes = this.changes;
    this.changes = { hosts: new Set(), rollout: false };
    return changes;
  }

  host(agent: string): RolloutHost | undefined {
    const i = this.index.get(agent);
    return i === undefined ? undefined : this.snap.hosts[i];
  }

  /** Where `agent` is in snap.hosts (the order hosts joined). */
  position(agent: string): number | undefined {
    return this.index.get(agent);
  }

  /** Hosts in `state` now. */
  inState(state: RolloutHostState): number {
    return this.states[state];
  }

  counts(): HostCounts {
    return Object.fromEntries(Object.entries(this.states).filter(([, n]) => n > 0));
  }

  /** How many hosts may update at once right now: the semaphore limit of the rollout's channel. */
  admission(): number {
    const { policy, status } = this.snap;
    if (!ADMITTING.includes(status)) return 0;
    if (this.canariesSucceeded < policy.canary) return policy.canary - this.canariesSucceeded;
    return Math.max(0, Math.min(policy.batchSize, policy.maxUnavailable - this.down));
  }

  /** When an updating host counts as timed out. */
  deadlineOf(agent: string): number | null {
    const h = this.host(agent);
    return h?.state === 'updating' && h.startedAt ? Date.parse(h.startedAt) + this.snap.policy.hostTimeout * 1000 : null;
  }

  /** A host registered in the channel: it joins, or is turned away if this rollout will not update it. */
  queued(agent: string, fromSha: string | null, now: number): void {
    const h = this.host(agent);
    if (this.turnedAway(agent, h, now) || h?.state === 'queued' || h?.state === 'updating') return;
    if (h) this.setHost(h, 'queued', now, null);
    else this.join(agent, fromSha, now);
    if (this.ended) this.reopen(now);
  }

  /** The semaphore let the host start. With a free slot this comes before `queued`, so it checks the same. */
  granted(agent: string, fromSha: string | null, now: number): void {
    let h = this.host(agent);
    if (this.turnedAway(agent, h, now)) return;
    h ??= this.join(agent, fromSha, now);
    if (this.ended) this.reopen(now);
    const canary = h.canary || this.canaries < this.snap.policy.canary;
    this.setHost(h, 'updating', now, canary ? 'canary' : null, { canary, startedAt: iso(now) });
  }

  succeeded(agent: string, now: number): void {
    const h = this.host(agent);
    if (!h || h.state !== 'updating') return;
    this.setHost(h, 'succeeded', now, null);
    if (this.snap.status === 'aborted' && this.snap.policy.onAbort === 'rollback') this.sendBack(h, now);
    this.settle(now);
  }

  /** Failed its update (`recovered`: it is back on its previous SHA), or timed out. */
  failed(agent: string, state: 'failed' | 'timed-out', error: string, recovered: boolean, now: number): void {
    const h = this.host(agent);
    if (!h || h.state !== 'updating') return;
    this.setHost(h, state, now, error, { down: !recovered });
    const failures = this.failures();
    if (h.canary) this.abort(now, `canary ${agent} failed: ${error}`);
    else if (failures >= this.snap.policy.failureThreshold) this.abort(now, `${failures} host(s) failed (threshold ${this.snap.policy.failureThreshold}); last: ${agent}: ${error}`);
    this.settle(now);
  }

  /** Gave up waiting (a newer push, or the agent stopping): it may register again. */
  withdrew(agent: string, now: number): void {
    const h = this.host(agent);
    if (h?.state === 'queued') this.setHost(h, 'pending', now, null);
  }

  offline(agent: string, now: number): void {
    const h = this.host(agent);
    if (!h || (h.state !== 'pending' && h.state !== 'queued')) return;
    if (h.state === 'queued') this.effects.push({ kind: 'evict', agent });
    this.setHost(h, 'offline', now, 'went offline before its turn');
    this.settle(now);
  }

  pause(now: number): string | null {
    if (this.snap.status !== 'running') return `rollout ${this.id} is ${this.snap.status}, not running`;
    this.setStatus('paused', now, 'paused by an operator');
    return null;
  }

  resume(now: number): string | null {
    if (this.snap.status === 'frozen') return `environment ${this.snap.env} is frozen: unfreeze it to start this rollout`;
    if (this.snap.status !== 'paused') return `rollout ${this.id} is ${this.snap.status}, not paused`;
    this.setStatus('running', now, null);
    this.settle(now);
    return null;
  }

  /** Its environment was frozen: no host starts until unfreeze (updating ones finish). */
  freeze(now: number): void {
    if (this.snap.status !== 'running' && this.snap.status !== 'paused') return;
    this.setStatus('frozen', now, `environment ${this.snap.env} is frozen`);
  }

  /** This host will not take part (it was pinned): it no longer holds the rollout open. */
  leaveOut(agent: string, now: number, reason: string): void {
    const h = this.host(agent);
    if (!h || !['pending', 'queued', 'offline'].includes(h.state)) return;
    if (h.state === 'queued') this.effects.push({ kind: 'evict', agent });
    this.setHost(h, 'skipped', now, reason);
    this.settle(now);
  }

  unfreeze(now: number): void {
    if (this.snap.status !== 'frozen') return;
    this.setStatus('running', now, null);
    this.settle(now);
  }

  abort(now: number, reason: string): string | null {
    if (this.ended) return `rollout ${this.id} is already ${this.snap.status}`;
    this.cancel('aborted', now, reason);
    if (this.snap.policy.onAbort === 'rollback') for (const h of this.snap.hosts.filter((x) => x.state === 'succeeded')) this.sendBack(h, now);
    return null;
  }

  supersede(now: number, by: string): void {
    if (this.snap.status !== 'aborted' && this.snap.status !== 'superseded') this.cancel('superseded', now, `superseded by ${by}`);
  }

  /** Hosts that have not started are left out; updating ones finish and are counted. */
  private cancel(status: 'aborted' | 'superseded', now: number, reason: string): void {
    this.setStatus(status, now, reason);
    for (const h of this.snap.hosts) {
      if (h.state === 'queued') this.effects.push({ kind: 'evict', agent: h.agent });
      if (h.state === 'queued' || h.state === 'pending' || h.state === 'offline') this.setHost(h, 'skipped', now, reason);
    }
  }

  private sendBack(h: RolloutHost, now: number): void {
    if (!h.fromSha) return;
    this.effects.push({ kind: 'rollback', agent: h.agent, sha: h.fromSha });
    this.setHost(h, 'rolled-back', now, `sent back to ${short(h.fromSha)}`);
  }

  /**
   * A cancelled rollout turns every host away; a host done here already (a restarted agent asking
   * again) keeps its outcome. Pending, offline and skipped hosts may (re)join: in a rollout that
   * is not cancelled, skipped means left out by a pin, since lifted.
   */
  private turnedAway(agent: string, h: RolloutHost | undefined, now: number): boolean {
    if (this.snap.status === 'aborted' || this.snap.status === 'superseded') {
      this.effects.push({ kind: 'evict', agent });
      if (h && ACTIVE.includes(h.state)) this.setHost(h, 'skipped', now, this.snap.reason);
      return true;
    }
    if (h && !JOINABLE.includes(h.state) && h.state !== 'queued' && h.state !== 'updating') {
      this.effects.push({ kind: 'evict', agent });
      return true;
    }
    return false;
  }

  private join(agent: string, fromSha: string | null, now: number): RolloutHost {
    const h: RolloutHost = { agent, state: 'queued', canary: false, fromSha, startedAt: null, endedAt: null, error: null, down: false };
    this.index.set(agent, this.snap.hosts.length);
    this.snap.hosts.push(h);
    this.count(h, 1);
    this.changes.hosts.add(agent);
    this.touch(now);
    this.event(h, 'queued', 'joined after the rollout was planned', null);
    return h;
  }

  /** A host came back to a completed rollout: it runs again until that host is done. */
  private reopen(now: number): void {
    this.setStatus('running', now, null);
  }

  /** Ends a running (or paused) rollout once no host is left to update, or when it can go no further. */
  private settle(now: number): void {
    const { status, hosts, policy } = this.snap;
    if (status !== 'running' && status !== 'paused') return;
    const failures = this.failures();
    if (!ACTIVE.some((s) => this.states[s] > 0)) {
      this.setStatus(failures ? 'failed' : 'succeeded', now, failures ? `${failures} of ${hosts.length} hosts failed` : null);
    } else if (status === 'running' && this.admission() === 0 && this.states.updating === 0) {
      this.abort(now, `${this.down} host(s) down: maxUnavailable (${policy.maxUnavailable}) reached`);
    }
  }

  private failures(): number {
    return HOST_FAILED.reduce((n, s) => n + this.states[s], 0);
  }

  /** An ended status stamps endedAt; any other clears it (a reopened rollout runs again). */
  private setStatus(status: RolloutStatus, now: number, reason: string | null): void {
    this.snap.status = status;
    this.snap.reason = reason;
    this.snap.endedAt = ROLLOUT_ENDED.includes(status) ? iso(now) : null;
    this.changes.rollout = true;
    this.touch(now);
    this.event(null, status, reason, null);
  }

  private setHost(h: RolloutHost, state: RolloutHostState, now: number, detail: string | null, patch: Partial<Pick<RolloutHost, 'canary' | 'down' | 'startedAt'>> = {}): void {
    const from = h.state;
    this.count(h, -1);
    Object.assign(h, patch);
    h.state = state;
    if (!ACTIVE.includes(state)) h.endedAt = iso(now);
    if (HOST_FAILED.includes(state) || state === 'skipped' || state === 'offline') h.error = detail;
    this.count(h, 1);
    this.changes.hosts.add(h.agent);
    this.touch(now);
    this.event(h, state, detail, from);
  }

  /** The next numbered event; a host event carries a copy of the host as it is now, so a reader can apply it. */
  private event(h: RolloutHost | null, state: RolloutStatus | RolloutHostState, detail: string | null, from: RolloutHostState | null): void {
    const { snap } = this;
    const base = { v: SCHEMA_VERSION, id: snap.id, seq: ++snap.seq, at: snap.updatedAt, state, detail } as const;
    const event: RolloutEvent = h ? { ...base, agent: h.agent, host: { ...h }, from } : { ...base, agent: null, reason: snap.reason, endedAt: snap.endedAt };
    this.effects.push({ kind: 'event', event });
  }

  private count(h: RolloutHost, by: 1 | -1): void {
    this.states[h.state] += by;
    if (h.down) this.down += by;
    if (h.canary) {
      this.canaries += by;
      if (h.state === 'succeeded') this.canariesSucceeded += by;
    }
  }

  private touch(now: number): void {
    this.snap.updatedAt = iso(now);
  }
}

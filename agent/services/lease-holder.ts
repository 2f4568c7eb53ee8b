import type { Logger } from '../../src/shared/logger.js';
import type { GrantedService, LeaseGrant, LeaseRenewal } from '../../src/shared/contract/services-messages.js';
import type { CopyState, ServiceSpec } from './service-supervisor.js';

/** The agent's monotonic clock (performance.now) and timers; fakes in tests. */
export type LeaseClock = { now(): number; setTimeout(fn: () => void, ms: number): unknown; clearTimeout(handle: unknown): void };

/** What this agent knows of a service's generations, kept durably: the highest it has seen, and whether that one ended here. */
export type GenerationRecord = { generation: number; restarts: number; ended: boolean };

/** The durable record of generations (generation-file.ts); `save` returns once it is on disk and throws when it cannot be written. */
export interface GenerationLog {
  load(): Record<string, GenerationRecord>;
  save(all: Record<string, GenerationRecord>): void;
}

/** The supervisor as the lease holder drives it. */
export interface Copies {
  running(): ReadonlyMap<string, Pick<CopyState, 'generation' | 'restarts' | 'stopping'>>;
  start(spec: ServiceSpec): void;
  stop(name: string, reason: string): unknown;
  /** `lateMs`: how long after the lease ran out this comes; taken off each copy's stopTimeout. */
  stopAll(reason: string, lateMs: number): unknown;
}


export type LeaseHolderDeps = {
  agent: string;
  /** Random, new at each start of the agent. */
  session: string;
  clock: LeaseClock;
  copies: Copies;
  generations: GenerationLog;
  /** A placement this agent will not run (a stale generation, a generation that ended here): the hub places it anew. */
  refused(name: string, placement: Pick<GrantedService, 'generation' | 'restarts'>, reason: string): void;
  log: Logger;
};

/** Requests remembered for their grants; older ones are answered too late to matter. */
const PENDING_MAX = 64;

/**
 * The agent side of the services lease (src/hub/engines/services/model.ts, LeaseSettings). Each
 * renewal is stamped with the monotonic time a0 it was sent; a grant for it holds the lease until
 * a0 + leaseMs, so a grant delayed in the broker only shortens the lease, never lengthens it past
 * what the hub counts on. When the lease runs out every copy is stopped. Generations are fencing
 * tokens: a copy of a generation lower than one heard is stopped at once, and a generation lower
 * than the highest seen, or one that ended here, is never started.
 */
export class LeaseHolder {
  private seq = 0;
  private readonly pending = new Map<number, number>();
  private holdUntil = -Infinity;
  /** The grant that says what runs: the newest by (seq, grantedAt). */
  private applied = { seq: 0, grantedAt: -1 };
  private desired: Record<string, GrantedService> = {};
  private timer: unknown;
  private readonly generations: Record<string, GenerationRecord>;
  private readonly refusedOnce = new Set<string>();

  constructor(private readonly deps: LeaseHolderDeps) {
    this.generations = deps.generations.load();
  }

  /** The next renewal request, to publish now. */
  renewal(): LeaseRenewal {
    const seq = ++this.seq;
    this.pending.set(seq, this.deps.clock.now());
    if (this.pending.size > PENDING_MAX) this.pending.delete(this.pending.keys().next().value!);
    const running = Object.fromEntries([...this.deps.copies.running()].map(([name, copy]) => [name, copy.generation]));
    return { v: 1, agent: this.deps.agent, session: this.deps.session, seq, running };
  }

  /** Whether the lease is held now. */
  held(): boolean {
    return this.deps.clock.now() < this.holdUntil;
  }

  /** Monotonic time the lease runs out at (−Infinity before the first grant). */
  heldUntil(): number {
    return this.holdUntil;
  }

  /**
   * A grant (signature checked, payload decoded). One for another session or an unknown request is
   * ignored. The hub answers each renewal and also grants unasked (a new placement, a cancel),
   * echoing the latest seq it heard: so a0 is kept for a seq after its first grant, and such a
   * grant, held only until that same a0 + leaseMs, never lengthens the lease.
   */
  granted(grant: LeaseGrant): void {
    const a0 = grant.session === this.deps.session ? this.pending.get(grant.seq) : undefined;
    if (a0 === undefined) return this.deps.log.debug({ seq: grant.seq }, 'lease grant for no request of this agent: ignored');
    this.holdUntil = Math.max(this.holdUntil, a0 + grant.leaseMs);
    // Grants may arrive out of order: the newest by (seq, grantedAt) says what to run. Equal ones
    // (two grants in one hub millisecond) came in the order the hub sent them on this one topic.
    const { seq, grantedAt } = this.applied;
    if (grant.seq > seq || (grant.seq === seq && grant.grantedAt >= grantedAt)) {
      this.applied = { seq: grant.seq, grantedAt: grant.grantedAt };
      // An older request's a0 can hold no longer than this one's.
      for (const old of this.pending.keys()) if (old < grant.seq) this.pending.delete(old);
      this.desired = grant.services;
      for (const [name, want] of Object.entries(grant.services)) this.noteHigher(name, want.generation);
    }
    this.schedule();
    this.reconcile();
  }

  /**
   * `name`'s retained placement names another agent or none (cancelled, moving) at `generation`:
   * a copy here of that generation or lower is over. Every agent hears every placement, so names
   * this agent never ran are not recorded.
   */
  heard(name: string, generation: number): void {
    if (!this.knows(name)) return;
    const rec = this.generations[name];
    if (rec?.generation === generation) {
      if (!rec.ended) this.trySave(name, { ...rec, ended: true });
    } else this.noteHigher(name, generation, true);
    this.reconcile();
  }

  /** Whether `name` runs here or has a generation on record here: only its placements concern this agent. */
  knows(name: string): boolean {
    return name in this.generations || this.deps.copies.running().has(name);
  }

  /** A copy ended (the supervisor's report): a copy waiting for it may start now. */
  exited(): void {
    this.reconcile();
  }

  /**
   * A timer for the lease's end. Timers may fire a little early by this clock (Node counts from
   * its cached loop time), so one that finds the lease still held sets another: always one, never
   * none, however close to the end the check falls.
   */
  private schedule(): void {
    this.deps.clock.clearTimeout(this.timer);
    const left = Math.max(1, this.holdUntil - this.deps.clock.now());
    this.timer = this.deps.clock.setTimeout(() => {
      if (!this.held()) return this.reconcile();
      this.schedule();
    }, left);
  }

  /** Makes what runs match the lease and the newest grant, never letting a stale copy run. */
  private reconcile(): void {
    const running = this.deps.copies.running();
    if (!this.held()) {
      const live = [...running].filter(([, copy]) => !copy.stopping);
      if (live.length === 0) return;
      this.deps.log.warn({ services: live.map(([name]) => name) }, 'services lease ran out: stopping every service');
      for (const [name, copy] of live) this.fence(name, copy);
      this.deps.copies.stopAll('lease ran out', Math.max(0, this.deps.clock.now() - this.holdUntil));
      return;
    }
    for (const [name, copy] of running) {
      if (copy.stopping) continue;
      const want = this.desired[name];
      const rec = this.generations[name];
      if (rec && rec.generation > copy.generation) this.stop(name, copy, `superseded by generation ${rec.generation}`);
      else if (rec?.ended && rec.generation === copy.generation) this.stop(name, copy, `generation ${copy.generation} was placed elsewhere or cancelled`);
      else if (!want) this.stop(name, copy, 'not in the lease grant (cancelled or moved)');
    }
    for (const [name, want] of Object.entries(this.desired)) {
      if (running.has(name)) continue;
      const refusal = this.refusal(name, want);
      if (refusal === 'done') continue;
      if (refusal) {
        this.refuse(name, want, refusal);
        continue;
      }
      try {
        this.save(name, { generation: want.generation, restarts: want.restarts, ended: false });
      } catch (err) {
        this.refuse(name, want, `cannot record generation ${want.generation}: ${(err as Error).message}`);
        continue;
      }
      this.deps.copies.start({ name, ...want });
    }
  }

  /** Why `want` may not start; 'done' when this very start ran already (the hub restarts it with a higher `restarts`). */
  private refusal(name: string, want: GrantedService): string | 'done' | null {
    const rec = this.generations[name];
    if (!rec || want.generation > rec.generation) return null;
    if (want.generation < rec.generation) return `generation ${want.generation} is older than generation ${rec.generation} seen here`;
    if (rec.ended) return `generation ${want.generation} ended here`;
    return want.restarts > rec.restarts ? null : 'done';
  }

  private refuse(name: string, want: GrantedService, reason: string): void {
    const key = `${name}\0${want.generation}\0${want.restarts}`;
    if (this.refusedOnce.has(key)) return;
    this.refusedOnce.add(key);
    this.deps.log.warn({ service: name, generation: want.generation, reason }, 'service placement refused');
    this.deps.refused(name, want, reason);
  }

  private stop(name: string, copy: Pick<CopyState, 'generation' | 'restarts'>, reason: string): void {
    this.fence(name, copy);
    this.deps.copies.stop(name, reason);
  }

  /** The copy's generation is over here: recorded before it is stopped, so a restarted agent never starts it again. */
  private fence(name: string, copy: Pick<CopyState, 'generation' | 'restarts'>): void {
    const rec = this.generations[name];
    if (rec && rec.generation > copy.generation) return; // a higher one fences it already
    this.trySave(name, { generation: copy.generation, restarts: copy.restarts, ended: true });
  }

  /** Raises the highest generation seen; `ended` when it was placed elsewhere, so it never starts here. */
  private noteHigher(name: string, generation: number, ended = false): void {
    const rec = this.generations[name];
    if (rec && rec.generation >= generation) return;
    this.trySave(name, { generation, restarts: -1, ended });
  }

  /** Stopping must not wait for the disk: a failed write is logged, and the stop goes ahead. */
  private trySave(name: string, rec: GenerationRecord): void {
    try {
      this.save(name, rec);
    } catch (err) {
      this.generations[name] = rec;
      this.deps.log.error({ service: name, err: (err as Error).message }, 'service generation not recorded');
    }
  }

  private save(name: string, rec: GenerationRecord): void {
    const next = { ...this.generations, [name]: rec };
    this.deps.generations.save(next);
    this.generations[name] = rec;
  }
}

import type { LeaseSettings } from './model.js';

export type FencingSettings = LeaseSettings & {
  /** An agent not heard from (renewal or heartbeat) for this long is lost, as if its last will fired. */
  heartbeatMissMs: number;
};

/** Three renewals missed: a lost packet or a slow broker is not a lost agent. */
export const DEFAULT_HEARTBEAT_MISS_MS = 1500;

/** A copy as the agent names it in a renewal or report, or as the hub grants it. */
export type CopyRef = { name: string; generation: number };

/**
 * Per-agent lease bookkeeping on the hub's clock: when the hub last granted an agent a lease (so
 * when every copy it was granted is surely stopped) and when it was last heard from (so when it
 * counts as lost). The decisions are pure functions below; this class only keeps the times.
 */
export class Fencing {
  private readonly grants = new Map<string, number>();
  private readonly seen = new Map<string, number>();

  constructor(readonly settings: FencingSettings) {}

  /** A grant left the hub at `now` (including a hub restart: a grant may have left just before the crash). */
  recordGrant(agent: string, now: number): void {
    this.grants.set(agent, Math.max(now, this.grants.get(agent) ?? now));
  }

  lastGrant(agent: string): number | undefined {
    return this.grants.get(agent);
  }

  heard(agent: string, now: number): void {
    this.seen.set(agent, now);
  }

  /** The agent is lost and will be told nothing more until it renews again. */
  forget(agent: string): void {
    this.seen.delete(agent);
  }

  /**
   * When any copy the agent was granted up to now is surely stopped: its lease (measured from a
   * send time no later than the grant) ran out, its stop timeout passed, plus clock rate drift.
   * An agent never granted anything never held a lease, so nothing of it can run.
   */
  safeToReplaceAt(agent: string, stopTimeoutMs: number): number {
    const grant = this.grants.get(agent);
    if (grant === undefined) return Number.NEGATIVE_INFINITY;
    const { leaseMs, driftMs } = this.settings;
    return grant + leaseMs + stopTimeoutMs + driftMs;
  }

  /** Agents whose heartbeats are overdue at `now`. */
  missed(now: number): string[] {
    return [...this.seen].filter(([, at]) => at + this.settings.heartbeatMissMs <= now).map(([agent]) => agent);
  }

  /** The next time an agent would become overdue, if one is being watched. */
  nextMissAt(): number | undefined {
    let next: number | undefined;
    for (const at of this.seen.values()) next = Math.min(next ?? Number.POSITIVE_INFINITY, at + this.settings.heartbeatMissMs);
    return next;
  }
}

/**
 * What an agent is told on renewal: run exactly `assigned` (the hub's placements on it), and stop
 * every reported copy that is not one of them — an older generation, a service moved or
 * cancelled while it was cut off. An agent back with a stale generation is stopped at once this way.
 */
export function staleCopies(assigned: readonly CopyRef[], reported: readonly CopyRef[]): CopyRef[] {
  const current = new Map(assigned.map((c) => [c.name, c.generation]));
  return reported.filter((c) => current.get(c.name) !== c.generation);
}

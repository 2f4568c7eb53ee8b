/**
 * The services engine's shared vocabulary (issue 13): a service, its placements, the lease that
 * fences copies, and the store and clock the pure code is given. Pure types and constants.
 */

/** A service's unique name (shared with the agent, which runs and names files by it). */
export { SERVICE_NAME } from '../../../shared/contract/services-messages.js';

export type ServiceStatus =
  /** Fits on no live agent yet; placed in creation order as capacity appears. */
  | 'queued'
  /** Placed (generation g on an agent); the agent has not yet reported it running. */
  | 'placed'
  | 'running'
  /** Restarting on the same agent after an exit, with backoff. */
  | 'restarting'
  /** Crashed too often within the window on one agent: being moved to another. */
  | 'failing'
  /** Cancelled: its copy is being stopped; then it is forgotten (history kept). */
  | 'stopping'
  | 'cancelled';

export type Placement = {
  agent: string;
  /** Fencing token: strictly increasing per service, written durably before the placement is sent. */
  generation: number;
  placedAt: number;
  runningAt?: number;
  endedAt?: number;
  /** Why this placement ended: 'agent lost', 'crash loop', 'cancelled', 'stale generation', … */
  endReason?: string;
  /** The latest run's restart number (0: the first run); the agent starts each (generation, restarts) once. */
  restarts: number;
  /** The action's stopTimeout on that agent, kept so the fence can be computed after a hub restart. */
  stopTimeoutMs: number;
  /** Hub times of the exits within the restart window (the crash-loop count survives a hub restart). */
  exits: number[];
  /**
   * Set once the placement is revoked (ended, or stopping after a cancel): no new copy of the
   * service may start before this hub time, as this one may run until then. Absent once the agent
   * confirmed this copy stopped.
   */
  safeAt?: number;
};

export type Service = {
  name: string;
  /** An action of the agents' own config (`actions:`), offered under `services.actions`. */
  action: string;
  /** Reaches the process as PUSHFLEET_SERVICE_ARG (and as its last argument if the action allows). */
  arg?: string;
  /** Labels the agent must carry (all of them). */
  selector: Record<string, string>;
  createdAt: number;
  /** Creation order, for the queue. */
  seq: number;
  status: ServiceStatus;
  /** Highest generation ever given out for this service (never reused, even after a restart of the hub). */
  generation: number;
  /** The placement in force (absent when queued or cancelled). */
  current?: Placement;
  /** Earlier placements, newest first, bounded. */
  history: Placement[];
};

/** The placement in force, then the earlier ones, newest first. */
export const placementsOf = (s: Service): Placement[] => (s.current ? [s.current, ...s.history] : s.history);

/** The ended copy that may still run longest after `now` (its fence, `safeAt`, ends last), if any. */
export function latestFence(s: Service, now: number): Placement | undefined {
  let latest: Placement | undefined;
  for (const p of s.history) if (p.safeAt !== undefined && p.safeAt > now && (latest === undefined || p.safeAt > latest.safeAt!)) latest = p;
  return latest;
}

/** What an operator gives to create a service. */
export type ServiceRequest = { name: string; action: string; arg?: string; selector?: Record<string, string> };

/** A service as first stored: queued, no generation given out yet (the store may lift it). */
export function newService(req: ServiceRequest, seq: number, createdAt: number): Service {
  return { name: req.name, action: req.action, ...(req.arg === undefined ? {} : { arg: req.arg }), selector: req.selector ?? {}, createdAt, seq, status: 'queued', generation: 0, history: [] };
}

/** What an agent offers, from its retained status / heartbeat. */
export type ServiceServer = {
  agent: string;
  labels: Record<string, string>;
  actions: Record<string, { stopTimeoutMs: number; watchdogSec?: number }>;
  maxWorkers: number;
  online: boolean;
};

/**
 * The fencing lease (the timing argument, issue 13 and the engine README):
 * - An agent renews one lease for all its services every `renewMs`. It stamps each renewal
 *   request with its own monotonic send time a0 and, on the hub's grant, holds the lease until
 *   a0 + leaseMs on its own clock: delays in the broker can only shorten what it holds.
 * - The hub grants at hub time h ≥ the request's real send time, so the agent's copy is stopped
 *   (SIGTERM, then SIGKILL after the action's stopTimeout) by h + leaseMs + stopTimeoutMs in real
 *   time, up to clock rate drift (`driftMs`).
 * - The hub places a new copy of a service only after lastGrant(agent) + leaseMs + stopTimeoutMs +
 *   driftMs has passed, and only if the agent was lost (last will, or heartbeats missed). Copies
 *   never overlap.
 * - An agent that hears (retained placement, lease reply) a generation higher than its copy's
 *   stops that copy at once; it never starts a generation lower than one it has seen.
 */
export type LeaseSettings = {
  renewMs: number;
  leaseMs: number;
  driftMs: number;
};

export const DEFAULT_LEASE: LeaseSettings = { renewMs: 500, leaseMs: 1500, driftMs: 200 };

/** Durable state; SQLite by default, PostgreSQL with engines.services.postgresUrl: same schema, same tests. */
export interface ServiceStore {
  /** Every service not forgotten, by creation order. */
  load(): Promise<Service[]>;
  /** Writes the service whole (status, generation, current, history) atomically; resolves once durable. */
  save(service: Service): Promise<void>;
  /**
   * Creates it; rejects with a clear error when the name exists (a retry of a create that did
   * commit resolves). Resolves with the service as stored: its generation starts above that of
   * any earlier service of the same name, so agents that saw the old copy accept the new one.
   */
  create(service: Service): Promise<Service>;
  /** Forgets the service and its history; nothing to do if it is gone. */
  remove(name: string): Promise<void>;
  close(): Promise<void>;
}

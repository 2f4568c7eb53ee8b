import { z } from 'zod';
import { SCHEMA_VERSION, Timestamp } from '../messages.js';
import { ActionName } from './jobs-messages.js';

// ─── Services engine, agent side (issue 13) ─────────────────────────────────────────────────────
// Proposed for the wiring (topics not in the topic table yet): an agent renews one lease for all
// its services; the hub's signed grant answers one renewal and lists everything the agent is to
// run; the agent reports each copy's state. The timing argument is in
// src/hub/engines/services/model.ts (LeaseSettings).

/** A service's unique name: one topic level, also a file and process name on the agent. */
export const SERVICE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Names kept for the engine's own topics under pushfleet/services/ (its request topic; replies, once there), so a service's topics never read as the engine's. */
export const RESERVED_SERVICE_NAMES: readonly string[] = ['request', 'replies'];
export const ServiceName = z
  .string()
  .regex(SERVICE_NAME, 'use 1-63 lowercase letters, digits or "-", not starting or ending with "-"')
  .refine((name) => !RESERVED_SERVICE_NAMES.includes(name), `${RESERVED_SERVICE_NAMES.join(' and ')} are reserved names`);

/** Services per agent a message may list (maxWorkers is far below it). */
const MAX_SERVICES = 1000;
const Generation = z.number().int().positive();

/** A service's argument: it reaches the process as PUSHFLEET_SERVICE_ARG, so no NUL and within what execve takes. */
export const ServiceArg = z
  .string()
  .max(4096)
  .refine((s) => !s.includes('\0'), 'holds a NUL character');

/**
 * Agent → hub: renew my lease. `session` is random per agent start and `seq` counts within it;
 * the grant echoes both, so a grant delayed from an earlier life never extends this one. The
 * agent keeps its send time a0 to itself: the hub needs only to know when it granted.
 */
export const LeaseRenewal = z.object({
  v: z.literal(SCHEMA_VERSION),
  agent: z.string().min(1).max(128),
  session: z.string().regex(/^[0-9a-f]{16,64}$/),
  seq: z.number().int().positive(),
  /** What runs here now: service → generation. */
  running: z.record(ServiceName, Generation).refine((r) => Object.keys(r).length <= MAX_SERVICES, `at most ${MAX_SERVICES} services`),
});
export type LeaseRenewal = z.infer<typeof LeaseRenewal>;

/** One placement in a grant: the copy to run, fenced by its generation; `restarts` counts the hub's restarts of that placement. */
export const GrantedService = z.object({
  generation: Generation,
  restarts: z.number().int().nonnegative(),
  action: ActionName,
  arg: ServiceArg,
});
export type GrantedService = z.infer<typeof GrantedService>;

/**
 * Hub → agent, signed: the lease for renewal `seq` of `session`, held until a0 + leaseMs on the
 * agent's clock, and every service the agent is to run (one missing is stopped). `renewMs`: how
 * often the agent renews.
 */
export const LeaseGrant = z
  .object({
    v: z.literal(SCHEMA_VERSION),
    session: z.string().regex(/^[0-9a-f]{16,64}$/),
    seq: z.number().int().positive(),
    /** Hub time (ms) of the grant, increasing within one hub run: of two grants for one seq, the later counts. */
    grantedAt: z.number().nonnegative(),
    leaseMs: z.number().int().min(100).max(600_000),
    renewMs: z.number().int().min(10).max(600_000),
    services: z.record(ServiceName, GrantedService).refine((s) => Object.keys(s).length <= MAX_SERVICES, `at most ${MAX_SERVICES} services`),
  })
  .refine((g) => g.renewMs < g.leaseMs, { message: 'renewMs must be below leaseMs', path: ['renewMs'] });
export type LeaseGrant = z.infer<typeof LeaseGrant>;

/**
 * Agent → hub, one per copy: started, ready (READY=1), or ended (exited, stopped, watchdog
 * timeout, refused) with how. The hub decides restarts from `ended`.
 */
export const AgentServiceState = z.object({
  v: z.literal(SCHEMA_VERSION),
  agent: z.string().min(1).max(128),
  name: ServiceName,
  generation: Generation,
  restarts: z.number().int().nonnegative(),
  state: z.enum(['running', 'ready', 'ended', 'refused']),
  at: Timestamp,
  code: z.number().int().nullable().optional(),
  signal: z.string().max(16).nullable().optional(),
  reason: z.string().max(4096).optional(),
  /** The last STATUS= the process sent. */
  status: z.string().max(512).optional(),
});
export type AgentServiceState = z.infer<typeof AgentServiceState>;

/** What an agent offers the services engine, in its retained status: defined beside AgentStatus, which messages.ts cannot import from here. */
export { AgentServicesOffer } from '../messages.js';

import { z } from 'zod';
import { SCHEMA_VERSION } from '../messages.js';
import { replyEnvelope, requestEnvelope } from './request-envelope.js';
import { ActionName } from './jobs-messages.js';
import { ServiceArg, ServiceName } from './services-messages.js';

// ─── Services engine, operator side (issue 13) ──────────────────────────────────────────────────
// What `pushfleet services …` (over MQTT) and `/api/v1/services` (over HTTP) send and get back.
// Both reach the same ServicesApi (src/hub/engines/services/services-api.ts); times are ISO 8601.

export const SERVICES_ROOT = 'pushfleet/services';
/** Operator requests (`pushfleet services …`) and the hub's answers. */
export const SERVICES_REQUEST = `${SERVICES_ROOT}/request`;
// Not under SERVICES_ROOT: an agent's `pushfleet/services/+/placement` would reach the reply to a
// request whose id is "placement", so the broker refused that subscription.
export const servicesReplyTopic = (requestId: string): string => `pushfleet/services-replies/${requestId}`;
/** Retained, signed: who runs the service now ({generation, agent|null}). */
export const servicePlacementTopic = (name: string): string => `${SERVICES_ROOT}/${name}/placement`;
/** Retained: the service's whole view (ServiceView), for monitors. Cleared when it is removed. */
export const serviceStateTopic = (name: string): string => `${SERVICES_ROOT}/${name}/state`;

// Agent ↔ hub, under the agent's own topics.
/** Agent → hub: LeaseRenewal every renewMs (also the agent's services heartbeat). */
export const serviceRenewTopic = (agent: string): string => `pushfleet/agents/${agent}/services/renew`;
/** Hub → agent, signed: LeaseGrant. */
export const serviceLeaseTopic = (agent: string): string => `pushfleet/agents/${agent}/services/lease`;
/** Agent → anyone, retained: one copy's AgentServiceState. */
export const agentServiceStateTopic = (agent: string, name: string): string => `pushfleet/agents/${agent}/services/${name}/state`;
/** Agent → anyone, retained: the tail of one copy's stdout+stderr (ServiceOutput). */
export const agentServiceOutputTopic = (agent: string, name: string): string => `pushfleet/agents/${agent}/services/${name}/output`;

/** The tail of a copy's output an agent publishes and the hub keeps (characters). */
export const SERVICE_OUTPUT_CHARS = 65_536;

/** Retained placement: `agent` null when no copy may run (queued, cancelled, moving). */
export const ServicePlacement = z.object({
  v: z.literal(SCHEMA_VERSION),
  name: ServiceName,
  generation: z.number().int().nonnegative(),
  agent: z.string().min(1).max(128).nullable(),
});
export type ServicePlacement = z.infer<typeof ServicePlacement>;

/** The tail of one copy's output, as the agent keeps it. */
export const ServiceOutput = z.object({
  v: z.literal(SCHEMA_VERSION),
  agent: z.string().min(1).max(128),
  name: ServiceName,
  generation: z.number().int().positive(),
  restarts: z.number().int().nonnegative(),
  at: z.string(),
  output: z.string().max(SERVICE_OUTPUT_CHARS),
});
export type ServiceOutput = z.infer<typeof ServiceOutput>;

export const Selector = z.record(z.string().min(1).max(128), z.string().max(256)).refine((s) => Object.keys(s).length <= 32, 'at most 32 labels');

/** A new service: the same body for POST /api/v1/services and `pushfleet services add`. */
export const ServiceCreate = z
  .object({
    name: ServiceName,
    action: ActionName,
    arg: ServiceArg.default(''),
    selector: Selector.default({}),
  })
  .strict();
export type ServiceCreate = z.infer<typeof ServiceCreate>;

export const ServiceStatusName = z.enum(['queued', 'placed', 'running', 'restarting', 'failing', 'stopping', 'cancelled']);

export const PlacementView = z.object({
  agent: z.string(),
  generation: z.number().int(),
  restarts: z.number().int(),
  placedAt: z.string(),
  runningAt: z.string().optional(),
  endedAt: z.string().optional(),
  endReason: z.string().optional(),
});
export type PlacementView = z.infer<typeof PlacementView>;

export const ServiceView = z.object({
  name: z.string(),
  action: z.string(),
  arg: z.string(),
  selector: z.record(z.string(), z.string()),
  status: ServiceStatusName,
  generation: z.number().int(),
  createdAt: z.string(),
  /** The placement in force (absent when queued or cancelled). */
  current: PlacementView.optional(),
  /** Earlier placements, newest first (bounded by engines.services.historyLimit). */
  history: z.array(PlacementView),
  /** Why it waits or fails, in words (queued: what no agent offers; failing: the last crash). */
  reason: z.string().optional(),
});
export type ServiceView = z.infer<typeof ServiceView>;

export const ServerView = z.object({
  agent: z.string(),
  online: z.boolean(),
  labels: z.record(z.string(), z.string()),
  actions: z.array(z.string()),
  maxWorkers: z.number().int(),
  /** Slots in use, copies that may still be stopping included. */
  used: z.number().int(),
  services: z.array(z.string()),
});
export type ServerView = z.infer<typeof ServerView>;

export const ServiceLogsView = z.object({ name: z.string(), agent: z.string(), generation: z.number().int(), restarts: z.number().int(), at: z.string(), output: z.string() });
export type ServiceLogsView = z.infer<typeof ServiceLogsView>;

/** Paging of every list: `offset` from the start, at most `limit` (default 50, at most 1000). */
export const Page = z.object({ offset: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().positive().max(1000).default(50) }).strict();
export type Page = z.infer<typeof Page>;
export type Paged<T> = { items: T[]; total: number; offset: number; limit: number };
const pagedOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), total: z.number(), offset: z.number(), limit: z.number() });

export const ServicesRequest = z.discriminatedUnion('op', [
  z.object({ ...requestEnvelope, op: z.literal('add'), service: ServiceCreate }).strict(),
  z.object({ ...requestEnvelope, op: z.literal('rm'), name: ServiceName }).strict(),
  z.object({ ...requestEnvelope, op: z.literal('ls'), page: Page.prefault({}), status: ServiceStatusName.optional() }).strict(),
  z.object({ ...requestEnvelope, op: z.literal('show'), name: ServiceName }).strict(),
  z.object({ ...requestEnvelope, op: z.literal('logs'), name: ServiceName, generation: z.number().int().positive().optional() }).strict(),
  z.object({ ...requestEnvelope, op: z.literal('servers'), page: Page.prefault({}) }).strict(),
]);
export type ServicesRequest = z.infer<typeof ServicesRequest>;

/** What a refused request was: the REST status follows from it (400, 404, 409, 503). */
export const ServicesErrorCode = z.enum(['invalid', 'not-found', 'exists', 'unavailable']);
export type ServicesErrorCode = z.infer<typeof ServicesErrorCode>;

export const ServicesReply = z.object({
  ...replyEnvelope,
  code: ServicesErrorCode.optional(),
  service: ServiceView.optional(),
  services: pagedOf(ServiceView).optional(),
  servers: pagedOf(ServerView).optional(),
  logs: ServiceLogsView.optional(),
});
export type ServicesReply = z.infer<typeof ServicesReply>;

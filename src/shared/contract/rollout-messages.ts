import { z } from 'zod';
import { SCHEMA_VERSION, Sha, RepoName, GitRef, Timestamp } from '../messages.js';
import { replyEnvelope } from './request-envelope.js';

// ─────────────────────────────────────────────────────────────────────────────────────────────
// Rollouts: one app × one environment × one SHA, admitted host by host through a semaphore
// channel. Topics: src/shared/topics.ts; reference: src/hub/engines/rollouts/README.md.
// ─────────────────────────────────────────────────────────────────────────────────────────────

/** An environment is an agent's `env` label: one topic level without dots (ids are split on them). */
export const EnvName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'use 1-64 letters, digits, "_" or "-"');
/** `{app}.{env}.{first 12 hex of the SHA}`: the same push always gets the same id. */
export const RolloutId = z.string().regex(/^[A-Za-z0-9._-]{1,128}\.[A-Za-z0-9_-]{1,64}\.[0-9a-f]{12}$/, 'expected a rollout id like web.production.0123456789ab');

/** A count, or a percentage of the rollout's hosts ("25%"), rounded up and at least 1. */
export const HostCount = z.union([z.number().int().nonnegative(), z.string().regex(/^(?:100|[1-9]?[0-9])(?:\.[0-9]+)?%$/, 'expected a count or a percentage such as "25%"')]);
export type HostCount = z.infer<typeof HostCount>;

/** A rollout policy as configured (engines.rollouts.policies[]); counts are resolved per rollout. */
export const RolloutPolicyRule = z
  .object({
    /** Globs on app name and environment; a missing key matches everything. */
    app: z.string().min(1).optional(),
    env: z.string().min(1).optional(),
    /** Hosts updating at once; a freed slot is refilled at once. */
    batchSize: HostCount.optional(),
    /** The first N hosts must all succeed before anyone else starts (0: no canary). */
    canary: z.number().int().nonnegative().optional(),
    /** Hosts that may be down at once: updating, or failed without getting back to their previous SHA. */
    maxUnavailable: HostCount.optional(),
    /** A host that has not finished this long after its grant is failed (and its slot taken back). */
    hostTimeout: z.number().positive().optional(),
    /** Abort once this many hosts (or this share) failed. */
    failureThreshold: HostCount.optional(),
    /** stop: hosts already updated stay; rollback: they are sent back to their previous SHA. */
    onAbort: z.enum(['stop', 'rollback']).optional(),
  })
  .strict();
export type RolloutPolicyRule = z.infer<typeof RolloutPolicyRule>;

/** A policy resolved for one rollout: plain counts. */
export const RolloutPolicy = z.object({
  batchSize: z.number().int().positive(),
  canary: z.number().int().nonnegative(),
  maxUnavailable: z.number().int().positive(),
  hostTimeout: z.number().positive(),
  failureThreshold: z.number().int().positive(),
  onAbort: z.enum(['stop', 'rollback']),
});
export type RolloutPolicy = z.infer<typeof RolloutPolicy>;

/**
 * running/paused/frozen (the environment is frozen: it starts on unfreeze); then one of
 * succeeded (every host succeeded or was left out), failed (done, with failures under the
 * threshold), aborted (threshold crossed or `rollout abort`), superseded (a newer push took over).
 */
export const RolloutStatus = z.enum(['running', 'paused', 'frozen', 'succeeded', 'failed', 'aborted', 'superseded']);
export type RolloutStatus = z.infer<typeof RolloutStatus>;
/** Statuses after which a rollout admits no one it has not already let in. */
export const ROLLOUT_ENDED: readonly RolloutStatus[] = ['succeeded', 'failed', 'aborted', 'superseded'];

/**
 * pending: not registered yet; queued: waiting for its grant; updating: granted; then succeeded,
 * failed, timed-out (no answer within hostTimeout), skipped (cancelled before it started),
 * offline (went away before it started), rolled-back (sent back by an abort with onAbort rollback).
 */
export const RolloutHostState = z.enum(['pending', 'queued', 'updating', 'succeeded', 'failed', 'timed-out', 'skipped', 'offline', 'rolled-back']);
export type RolloutHostState = z.infer<typeof RolloutHostState>;
/** Host states that count against a rollout's failure threshold. */
export const HOST_FAILED: readonly RolloutHostState[] = ['failed', 'timed-out'];


export const RolloutHost = z.object({
  agent: z.string(),
  state: RolloutHostState,
  canary: z.boolean(),
  /** What the host ran before this rollout (where a rollback sends it). */
  fromSha: Sha.nullable(),
  startedAt: Timestamp.nullable(),
  endedAt: Timestamp.nullable(),
  error: z.string().nullable(),
  /** Not serving: it failed and did not get back to its previous SHA (counts against maxUnavailable). */
  down: z.boolean(),
});
export type RolloutHost = z.infer<typeof RolloutHost>;

/** Hosts per state. */
export const HostCounts = z.partialRecord(RolloutHostState, z.number().int().nonnegative());
export type HostCounts = z.infer<typeof HostCounts>;

/** How many hosts are in each state. */
export function countHosts(hosts: readonly Pick<RolloutHost, 'state'>[]): HostCounts {
  const counts: HostCounts = {};
  for (const h of hosts) counts[h.state] = (counts[h.state] ?? 0) + 1;
  return counts;
}

/**
 * Retained on `pushfleet/rollouts/{id}/state`: the whole rollout, rewritten at a bounded rate
 * (engines.rollouts.snapshotIntervalMs, longer for a large one) and at once when its status
 * changes. `seq` is the last event (`pushfleet/rollouts/{id}/events`) it includes: a reader
 * applies the events with a higher seq to get the rollout as it is now (see RolloutEvent).
 */
export const RolloutSnapshot = z.object({
  v: z.literal(SCHEMA_VERSION),
  id: RolloutId,
  app: z.string(),
  env: EnvName,
  repo: RepoName,
  ref: GitRef,
  sha: Sha,
  deliveryId: z.string(),
  pusher: z.string(),
  status: RolloutStatus,
  /** Why it ended or stopped, in words. */
  reason: z.string().nullable(),
  policy: RolloutPolicy,
  /** Every host, in the order they joined; empty when `hostsOmitted` (the snapshot would be too large). */
  hosts: z.array(RolloutHost),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  endedAt: Timestamp.nullable(),
  /** The seq of the last event this snapshot includes (0: none, or a hub before sequences). */
  seq: z.number().int().nonnegative().default(0),
  /** Hosts per state, also when `hosts` is left out. */
  counts: HostCounts.optional(),
  /**
   * Hosts left out of `hosts` because the snapshot would pass engines.rollouts.snapshotMaxBytes
   * (brokers bound a message's size); their states are in `counts`, their changes in the events.
   */
  hostsOmitted: z.number().int().nonnegative().default(0),
});
export type RolloutSnapshot = z.infer<typeof RolloutSnapshot>;

/**
 * On `pushfleet/rollouts/{id}/events`: one change of the rollout or of one host, numbered by
 * `seq` (1, 2, … per rollout, without gaps, kept across hub restarts). Applied to a snapshot whose
 * `seq` is lower, in seq order: a host event (`agent` set) replaces that host with `host` (or
 * appends it, for a host that joined); a rollout event sets `status` to `state`, `reason`,
 * `endedAt` and, like every event, `updatedAt` to `at`. Events with a seq the snapshot has are
 * already in it.
 */
export const RolloutEvent = z.object({
  v: z.literal(SCHEMA_VERSION),
  id: RolloutId,
  /** 0 from a hub before sequences. */
  seq: z.number().int().nonnegative().default(0),
  at: Timestamp,
  /** Set for a host event. */
  agent: z.string().nullable(),
  /** The rollout's status for a rollout event, the host's state for a host event. */
  state: z.union([RolloutStatus, RolloutHostState]),
  detail: z.string().nullable(),
  /** Host events: the host as it is after the change, and its state before (null: it joined). */
  host: RolloutHost.optional(),
  from: RolloutHostState.nullable().optional(),
  /** Rollout events: the rollout's reason and end time after the change. */
  reason: z.string().nullable().optional(),
  endedAt: Timestamp.nullable().optional(),
});
export type RolloutEvent = z.infer<typeof RolloutEvent>;

/**
 * `snap` with `event` applied, as the contract above says (a new object; `snap` is not changed).
 * An event the snapshot already has (seq ≤ snap.seq) changes nothing. With hosts omitted only
 * the counts follow the host events.
 */
export function applyRolloutEvent(snap: RolloutSnapshot, event: RolloutEvent): RolloutSnapshot {
  if (event.seq <= snap.seq) return snap;
  const next: RolloutSnapshot = { ...snap, seq: event.seq, updatedAt: event.at };
  if (event.agent === null) return { ...next, status: event.state as RolloutStatus, reason: event.reason ?? null, endedAt: event.endedAt ?? null };
  const { host } = event;
  if (!host) return next;
  const counts = { ...(snap.counts ?? countHosts(snap.hosts)) };
  // As countHosts: no key for a state no host is in.
  if (event.from && !(counts[event.from] = (counts[event.from] ?? 0) - 1)) delete counts[event.from];
  counts[host.state] = (counts[host.state] ?? 0) + 1;
  if (snap.hostsOmitted > 0) return { ...next, counts, hostsOmitted: snap.hostsOmitted + (event.from === null ? 1 : 0) };
  const at = snap.hosts.findIndex((h) => h.agent === host.agent);
  return { ...next, counts, hosts: at < 0 ? [...snap.hosts, host] : snap.hosts.map((h, i) => (i === at ? host : h)) };
}

const AgentName = z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'use letters, digits, ".", "_" or "-"');

/** On `pushfleet/rollouts/control`: what `pushfleet rollout …` asks of the hub. */
export const RolloutControl = z.intersection(
  z.object({ v: z.literal(SCHEMA_VERSION), requestId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), by: z.string().max(200) }),
  z.discriminatedUnion('op', [
    z.object({ op: z.literal('list'), limit: z.number().int().positive().max(1000).default(50) }),
    z.object({ op: z.enum(['pause', 'resume', 'abort']), id: RolloutId }),
    z.object({ op: z.enum(['freeze', 'unfreeze']), env: EnvName }),
    z.object({ op: z.literal('pin'), agent: AgentName, app: AgentName, sha: Sha }),
    z.object({ op: z.literal('unpin'), agent: AgentName, app: AgentName }),
  ]),
);
export type RolloutControl = z.infer<typeof RolloutControl>;

/** On `pushfleet/rollouts/replies/{requestId}`. */
export const RolloutReply = z.object({
  ...replyEnvelope,
  rollouts: z.array(RolloutSnapshot.omit({ hosts: true, policy: true, counts: true, hostsOmitted: true }).extend({ counts: HostCounts })).optional(),
});
export type RolloutReply = z.infer<typeof RolloutReply>;

/** Retained on `pushfleet/rollouts/settings`: what `explain` needs to plan like the hub. */
export const RolloutSettings = z.object({
  v: z.literal(SCHEMA_VERSION),
  policies: z.array(RolloutPolicyRule),
  defaults: RolloutPolicyRule,
  frozen: z.array(EnvName),
});
export type RolloutSettings = z.infer<typeof RolloutSettings>;

/**
 * Hub → one agent: go to `sha` now, without a grant. pin: stay there until unpinned (retained on
 * `pushfleet/agents/{agent}/pins/{app}`, cleared to unpin); rollback: an aborted rollout sends the
 * app back (`pushfleet/agents/{agent}/rollback`).
 * Only SHAs travel: the agent runs its own configured steps, as for any update.
 */
export const AgentDirective = z.object({
  v: z.literal(SCHEMA_VERSION),
  kind: z.enum(['pin', 'rollback']),
  app: AgentName,
  sha: Sha.nullable(),
  rolloutId: RolloutId.nullable(),
  by: z.string().max(200),
  at: Timestamp,
});
export type AgentDirective = z.infer<typeof AgentDirective>;

/**
 * CLI → one agent (`pushfleet/agents/{agent}/retry`, not retained): try the app's last failed
 * update again. The agent answers in its app state (`retryRequest`).
 */
export const RetryRequest = z.object({
  v: z.literal(SCHEMA_VERSION),
  app: AgentName,
  requestId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  by: z.string().max(200),
  at: Timestamp,
});
export type RetryRequest = z.infer<typeof RetryRequest>;

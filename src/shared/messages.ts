/**
 * The one schema module: every message pushfleet puts on MQTT is defined here and shared by the
 * hub and the agent. Decode with `decode()` at the boundary; nothing else trusts a payload.
 */
import { z } from 'zod';
import { isValidGitRef } from './git-ref.js';

export const SCHEMA_VERSION = 1;

/** A full commit id: SHA-1 (40 hex) or SHA-256 (64 hex) object format, lower case. */
export const Sha = z.string().regex(/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/, 'expected a full lower-case hex commit SHA');
export type Sha = z.infer<typeof Sha>;

export const ZERO_SHA = '0000000000000000000000000000000000000000';

/** `owner/name` as GitHub allows them; neither part may hold MQTT wildcards or separators. */
export const RepoName = z
  .string()
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/, 'expected "owner/name"')
  .refine((s) => !/\/\.{1,2}$/.test(s), 'repository name may not be "." or ".."');
export type RepoName = z.infer<typeof RepoName>;

export const GitRef = z
  .string()
  .refine(isValidGitRef, 'expected a valid refs/heads/… or refs/tags/… name');

const Timestamp = z.string().datetime({ offset: true });

export const PushMessage = z.object({
  v: z.literal(SCHEMA_VERSION),
  deliveryId: z.string().min(1).max(200),
  source: z.enum(['github', 'post-receive']),
  repo: RepoName,
  ref: GitRef,
  refType: z.enum(['branch', 'tag']),
  /** Branch name (without refs/heads/) when refType is branch, else null. */
  branch: z.string().nullable(),
  /** Tag name (without refs/tags/) when refType is tag, else null. */
  tag: z.string().nullable(),
  before: Sha,
  after: Sha,
  created: z.boolean(),
  deleted: z.boolean(),
  forced: z.boolean(),
  pusher: z.object({ name: z.string().max(200), email: z.string().max(320).nullable() }),
  headCommit: z
    .object({
      id: Sha,
      /** The commit message, cut to 4096 characters. */
      message: z.string().max(4096),
      timestamp: Timestamp,
      author: z.object({
        name: z.string().max(200),
        email: z.string().max(320).nullable(),
        username: z.string().max(200).nullable(),
      }),
    })
    .nullable(),
  cloneUrl: z.string().max(2048),
  receivedAt: Timestamp,
});
export type PushMessage = z.infer<typeof PushMessage>;

/** Retained on `pushfleet/hub/status`; `offline` is also the hub's last will. */
export const HubStatus = z.object({
  v: z.literal(SCHEMA_VERSION),
  state: z.enum(['online', 'offline']),
  version: z.string(),
  startedAt: Timestamp,
  at: Timestamp,
});
export type HubStatus = z.infer<typeof HubStatus>;

export const AgentStatus = z.object({
  v: z.literal(SCHEMA_VERSION),
  agent: z.string(),
  state: z.enum(['online', 'offline']),
  labels: z.record(z.string(), z.string()),
  version: z.string(),
  startedAt: Timestamp.nullable(),
  at: Timestamp,
});
export type AgentStatus = z.infer<typeof AgentStatus>;

/**
 * waiting: queued for a rollout's grant; retrying: a transient failure (fetch, clone) is tried
 * again at `retrying.nextAt`; held: a rollout cancelled this SHA (aborted, superseded, or the host
 * is pinned), so the app stays where it is. deployed: `sha` was fetched, checked out, updated,
 * restarted and passed health. waiting, updating and retrying are in progress, not outcomes.
 */
export const AppStateName = z.enum(['idle', 'waiting', 'updating', 'retrying', 'deployed', 'failed', 'rolled-back', 'held']);
export type AppStateName = z.infer<typeof AppStateName>;

export const StepName = z.enum(['fetch', 'verify', 'checkout', 'update', 'restart', 'health', 'rollback']);
export type StepName = z.infer<typeof StepName>;

/** Why an app's `verify` refused a commit (agent/commit-verifier.ts): it was never checked out. */
export const CommitRefusalReason = z.enum(['unsigned', 'bad-signature', 'untrusted-signer']);
export type CommitRefusalReason = z.infer<typeof CommitRefusalReason>;

export const AppState = z.object({
  v: z.literal(SCHEMA_VERSION),
  agent: z.string(),
  app: z.string(),
  repo: RepoName,
  /** The ref the deployed (or attempted) SHA came from. */
  ref: z.string().nullable(),
  state: AppStateName,
  /**
   * The SHA last deployed completely (or that a rollback went back to); for an app this agent
   * never deployed, the working copy's HEAD found at start (state idle). Moves only on completion.
   */
  sha: Sha.nullable(),
  /** The SHA the last update aimed for. */
  targetSha: Sha.nullable(),
  /** The push (delivery id) the last update came from: a restarted agent does not try it again. */
  deliveryId: z.string().nullable().default(null),
  lastError: z
    .object({ step: StepName, message: z.string(), outputTail: z.string() })
    .nullable(),
  /** Milliseconds per step of the last update, and in total. */
  durations: z.partialRecord(z.enum([...StepName.options, 'total']), z.number().nonnegative()),
  updatedAt: Timestamp,
  /** The app's branch or tag pattern from the agent's config, so the hub can plan rollouts. */
  follows: z.object({ kind: z.enum(['branch', 'tag']), pattern: z.string() }).nullable().default(null),
  /** Updates wait for a rollout's grant (app config `rollout: true`). */
  rollout: z.boolean().default(false),
  /** Set by `rollout pin`: the SHA this app stays on whatever is pushed. */
  pinnedSha: Sha.nullable().default(null),
  /** While state is retrying: the step that failed transiently, the try that runs next (2 = first retry), and when. */
  retrying: z.object({ step: StepName, attempt: z.number().int().positive(), nextAt: Timestamp }).nullable().default(null),
  /**
   * The agent was stopped (kill -9, OOM, stop timeout) during this update, at `step`; on its next
   * start it ran the update again from its first step (redo) or went back to the previous SHA
   * (rollback), per the app's `onInterrupted`.
   */
  interrupted: z
    // leftover: what the stopped run's step left running, terminated before the redo or rollback.
    .object({ step: StepName, phase: z.enum(['forward', 'rollback']), action: z.enum(['redo', 'rollback']), at: Timestamp, leftover: z.string().optional() })
    .nullable()
    .default(null),
  /** The last retained head refused for this app: on a topic not its own, or dated in the future. */
  refusedHead: z.object({ topic: z.string(), deliveryId: z.string().nullable(), reason: z.string(), at: Timestamp }).nullable().default(null),
  /** The answer to the last `pushfleet retry` for this app. */
  retryRequest: z.object({ id: z.string(), accepted: z.boolean(), detail: z.string(), at: Timestamp }).nullable().default(null),
  /** The last update's commit (`refused.sha`), refused by the app's `verify`: never checked out, the app stays on `sha`. */
  refused: z.object({ sha: Sha, reason: CommitRefusalReason, detail: z.string(), at: Timestamp }).nullable().default(null),
});
export type AppState = z.infer<typeof AppState>;

export const Heartbeat = z.object({
  v: z.literal(SCHEMA_VERSION),
  agent: z.string(),
  at: Timestamp,
  host: z.object({
    hostname: z.string(),
    os: z.string(),
    kernel: z.string(),
    arch: z.string(),
    cpuLoadPercent: z.number(),
    loadAvg: z.array(z.number()),
    memTotalBytes: z.number(),
    memUsedBytes: z.number(),
    uptimeSeconds: z.number(),
  }),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

/** Parses a raw MQTT/HTTP payload as JSON and checks it against a schema, never throwing. */
export function decode<T>(schema: z.ZodType<T>, raw: Buffer | string): Decoded<T> {
  let json: unknown;
  try {
    json = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (err) {
    return { ok: false, error: `not valid JSON: ${(err as Error).message}` };
  }
  return check(schema, json);
}

/** Checks an already-parsed value, naming each offending key in the error. */
export function check<T>(schema: z.ZodType<T>, value: unknown): Decoded<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, error: describeIssues(parsed.error) };
}

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

// ─── Orchestrator (issue 5) ─────────────────────────────────────────────────────────────────────
// Synchronised playbooks: clock pings between agent and hub, "start at T" commands to agents,
// their results, and a run's request, events and report. Times named `…At` here are milliseconds
// since the epoch as fractional numbers: sub-millisecond skew is the point, ISO strings lose it.
// Plain-word seed statuses (ALIVE, STARTED, …) are not JSON and not defined here.

const EpochMs = z.number().finite().nonnegative();
/** Node, step, run and action names become topic levels or argv selectors: no separators. */
export const OrchestratorName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'use 1-64 letters, digits, ".", "_" or "-"');

/** Agent → hub: one NTP-style clock ping; `t0` is the agent's send time. */
export const TimeRequest = z.object({ v: z.literal(SCHEMA_VERSION), agent: OrchestratorName, seq: z.number().int().nonnegative(), t0: EpochMs });
export type TimeRequest = z.infer<typeof TimeRequest>;

/** Hub → agent: `t1` when the hub received the ping, `t2` when it replied (hub clock). */
export const TimeReply = TimeRequest.omit({ agent: true }).extend({ t1: EpochMs, t2: EpochMs });
export type TimeReply = z.infer<typeof TimeReply>;

/** The agent's best estimate of (hub clock − own clock); the true offset is within ±errorMs. */
export const ClockEstimate = z.object({
  offsetMs: z.number().finite(),
  rttMs: z.number().nonnegative(),
  errorMs: z.number().nonnegative(),
  samples: z.number().int().positive(),
  measuredAt: EpochMs,
});
export type ClockEstimate = z.infer<typeof ClockEstimate>;

/** Retained per agent: it can take native commands, which actions it offers, how good its clock is. */
export const NodeInfo = z.object({
  v: z.literal(SCHEMA_VERSION),
  agent: OrchestratorName,
  seedNode: OrchestratorName,
  actions: z.array(OrchestratorName),
  clock: ClockEstimate.nullable(),
  at: EpochMs,
});
export type NodeInfo = z.infer<typeof NodeInfo>;

export const NodeCommand = z.discriminatedUnion('kind', [
  z.object({
    v: z.literal(SCHEMA_VERSION),
    kind: z.literal('start'),
    runId: OrchestratorName,
    stepId: OrchestratorName,
    action: OrchestratorName,
    args: z.array(z.string().max(256)).max(64),
    /** Hub clock: the agent starts at startAt − its measured offset. */
    startAt: EpochMs,
    /** Stop the action this long after it started (null: let it end by itself). */
    durationMs: z.number().positive().nullable(),
    sentAt: EpochMs,
  }),
  /** Stops the run's action on this agent (stepId null: any step of the run). */
  z.object({ v: z.literal(SCHEMA_VERSION), kind: z.literal('stop'), runId: OrchestratorName, stepId: OrchestratorName.nullable() }),
]);
export type NodeCommand = z.infer<typeof NodeCommand>;

/**
 * How one node's part of a step ended. ok: exited 0, or was stopped by its `duration`;
 * failed: non-zero exit or could not start; stopped: stopped by a cancel or a failed step;
 * refused: unknown action or arguments not allowed; busy: another action was running;
 * lost: the agent went offline; timeout: no result within the step's timeout.
 */
export const NodeOutcome = z.enum(['ok', 'failed', 'stopped', 'refused', 'busy', 'lost', 'timeout']);
export type NodeOutcome = z.infer<typeof NodeOutcome>;

export const NodeReport = z.object({
  node: OrchestratorName,
  outcome: NodeOutcome.nullable(),
  /** Hub clock (own clock + measured offset). */
  startedAt: EpochMs.nullable(),
  endedAt: EpochMs.nullable(),
  /** startedAt − the requested start instant: how late this node started. */
  lateByMs: z.number().nullable(),
  /** How long before the start instant the command arrived (negative: it arrived late). */
  leadMs: z.number().nullable(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  stoppedBy: z.enum(['duration', 'stop']).nullable(),
  clockErrorMs: z.number().nonnegative().nullable(),
  /** The offset used (hub − agent clock): startedAt − clockOffsetMs is the agent's own clock. */
  clockOffsetMs: z.number().nullable(),
  outputTail: z.string().max(8192),
  error: z.string().max(1000).nullable(),
});
export type NodeReport = z.infer<typeof NodeReport>;

/** Agent → hub (and, for seed commands, on `<root>/<node>/RESULT`): phase started, then finished. */
export const NodeResult = NodeReport.extend({
  v: z.literal(SCHEMA_VERSION),
  runId: OrchestratorName,
  stepId: OrchestratorName,
  phase: z.enum(['started', 'finished']),
});
export type NodeResult = z.infer<typeof NodeResult>;

/** CLI → hub: run this native playbook (the YAML text; the engine parses and validates it). */
export const RunRequest = z.object({
  v: z.literal(SCHEMA_VERSION),
  runId: OrchestratorName,
  file: z.string().max(1024),
  playbook: z.string().max(1024 * 1024),
  requestedAt: Timestamp,
});
export type RunRequest = z.infer<typeof RunRequest>;

/** CLI → hub: stop every running action of the run (Ctrl-C). */
export const RunCancel = z.object({ v: z.literal(SCHEMA_VERSION), runId: OrchestratorName, reason: z.string().max(200) });
export type RunCancel = z.infer<typeof RunCancel>;

export const StepStatus = z.enum(['pending', 'running', 'ok', 'failed', 'skipped', 'cancelled']);
export type StepStatus = z.infer<typeof StepStatus>;

export const StepReport = z.object({
  id: OrchestratorName,
  kind: z.enum(['action', 'barrier']),
  action: z.string().nullable(),
  args: z.array(z.string()),
  status: StepStatus,
  /** The common start instant T sent to every node (hub clock). */
  startAt: EpochMs.nullable(),
  /** max − min of the nodes' actual start times. */
  skewMs: z.number().nonnegative().nullable(),
  nodes: z.array(NodeReport),
  error: z.string().nullable(),
});
export type StepReport = z.infer<typeof StepReport>;

export const RunReport = z.object({
  v: z.literal(SCHEMA_VERSION),
  runId: OrchestratorName,
  name: z.string(),
  status: z.enum(['ok', 'failed', 'cancelled']),
  startedAt: EpochMs,
  endedAt: EpochMs,
  steps: z.array(StepReport),
});
export type RunReport = z.infer<typeof RunReport>;

/** Hub → CLI, on the run's events topic, in order. */
export const RunEvent = z.discriminatedUnion('type', [
  z.object({ v: z.literal(SCHEMA_VERSION), type: z.literal('accepted'), runId: OrchestratorName, steps: z.array(OrchestratorName) }),
  z.object({ v: z.literal(SCHEMA_VERSION), type: z.literal('rejected'), runId: OrchestratorName, error: z.string() }),
  z.object({
    v: z.literal(SCHEMA_VERSION),
    type: z.literal('step'),
    runId: OrchestratorName,
    stepId: OrchestratorName,
    status: StepStatus,
    nodes: z.array(OrchestratorName),
    startAt: EpochMs.nullable(),
    error: z.string().nullable(),
  }),
  z.object({ v: z.literal(SCHEMA_VERSION), type: z.literal('node'), runId: OrchestratorName, stepId: OrchestratorName, phase: z.enum(['started', 'finished']), report: NodeReport }),
  z.object({ v: z.literal(SCHEMA_VERSION), type: z.literal('finished'), runId: OrchestratorName, report: RunReport }),
]);
export type RunEvent = z.infer<typeof RunEvent>;

// ─────────────────────────────────────────────────────────────────────────────────────────────
// Semaphore engine (coordinosaur wire format). Inputs are what coordinosaur clients send, taken
// as leniently as the seed took them; outputs beyond the seed's `go` are JSON events with `v`.
// Topics: src/shared/topics.ts; reference: src/hub/engines/semaphore/README.md.
// ─────────────────────────────────────────────────────────────────────────────────────────────

/** A job uid is one topic level (replies go to `go/{uid}`); numbers count as their digits, like the seed's str(). */
export const SemUid = z
  .union([z.string(), z.number().int().transform(String)], { error: 'expected a string (or integer) uid' })
  .pipe(z.string().min(1, 'uid is empty').max(256).regex(/^[^/+#\u0000]+$/, 'a uid may not contain "/", "+", "#" or NUL'));

/** Seconds as a number, or a digit string as the seed's int() accepted; ten years at most. */
const SemSeconds = z
  .union([z.number(), z.string().regex(/^\d+$/).transform(Number)], { error: 'expected a number of seconds' })
  .pipe(z.number().nonnegative('expected seconds ≥ 0').max(315_360_000));

/** Names one registration of a uid, so its client can tell its own go from an earlier job's retained one. */
export const SemToken = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a token is 1-64 letters, digits, ".", "_" or "-"');

/** `{prefix}/{channel}/register`. Unknown keys are ignored so any coordinosaur client fits. */
export const SemRegister = z.looseObject({
  uid: SemUid,
  timeout: SemSeconds,
  /** pushfleet extension: give up waiting after this many seconds (the engine publishes `expired/{uid}`). */
  queueTimeout: SemSeconds.optional(),
  /** pushfleet extension: the go becomes a JSON `SemGo` carrying it, and a repeated register is a no-op. */
  token: SemToken.optional(),
});
export type SemRegister = z.infer<typeof SemRegister>;

/** `finished` / `aborted` payload: the raw uid, or the uid as a JSON string. */
export function decodeSemUid(raw: Buffer | string): Decoded<string> {
  const text = raw.toString();
  let value: unknown = text;
  if (text.startsWith('"')) {
    try {
      value = JSON.parse(text);
    } catch {
      // a uid that merely starts with a quote: take it as it is
    }
  }
  return check(SemUid, value);
}

/** `concurrency/set` payload: a whole number ≥ 0, or empty to go back to the configured value. */
export function decodeSemConcurrency(raw: Buffer | string): Decoded<number | null> {
  const text = raw.toString().trim();
  if (text === '') return { ok: true, value: null };
  if (!/^\+?\d{1,9}$/.test(text)) return { ok: false, error: `expected a whole number ≥ 0, got ${JSON.stringify(text.slice(0, 40))}` };
  return { ok: true, value: Number(text) };
}

/** `go/{uid}` (retained) of a registration that sent a token; without one the go is the raw uid, as in the seed. */
export const SemGo = z.object({ v: z.literal(SCHEMA_VERSION), uid: z.string(), token: z.string() });
export type SemGo = z.infer<typeof SemGo>;

/** `queued/{uid}`: the job waits; sent on register and again (throttled) as the queue moves. */
export const SemQueued = z.object({
  v: z.literal(SCHEMA_VERSION),
  uid: z.string(),
  token: z.string().optional(),
  /** 1 = next in line. */
  position: z.number().int().positive(),
  waiting: z.number().int().nonnegative(),
});
export type SemQueued = z.infer<typeof SemQueued>;

/** `expired/{uid}` (retained for a while): a working job outlived timeout + offset, or a waiter its queueTimeout. */
export const SemExpired = z.object({
  v: z.literal(SCHEMA_VERSION),
  uid: z.string(),
  /** cancelled: the hub withdrew the job (a rollout was aborted or superseded). */
  reason: z.enum(['timeout', 'queue-timeout', 'cancelled']),
  at: Timestamp,
  /** The registration's token, when it sent one. */
  token: z.string().optional(),
});
export type SemExpired = z.infer<typeof SemExpired>;

export const SemErrorCode = z.enum(['bad-topic', 'unknown-action', 'bad-json', 'bad-payload', 'duplicate-uid', 'unknown-uid', 'table-full', 'not-allowed']);
export type SemErrorCode = z.infer<typeof SemErrorCode>;

/** `{prefix}/{channel}/error` (or `{prefix}/error` when the topic has no channel): nothing changed. */
export const SemErrorEvent = z.object({
  v: z.literal(SCHEMA_VERSION),
  code: SemErrorCode,
  error: z.string(),
  uid: z.string().optional(),
  topic: z.string(),
});
export type SemErrorEvent = z.infer<typeof SemErrorEvent>;

/** `infos/reply`: a channel's slots, queue (in order) and quota windows. */
export const SemInfo = z.object({
  v: z.literal(SCHEMA_VERSION),
  channel: z.string(),
  maxConcurrentJobs: z.number().int().nonnegative(),
  timeoutOffset: z.number().nonnegative(),
  working: z.array(z.object({ uid: z.string(), grantedAt: Timestamp, expiresAt: Timestamp })),
  waiting: z.array(z.object({ uid: z.string(), registeredAt: Timestamp, queueDeadline: Timestamp.nullable() })),
  quotas: z.array(
    z.object({ seconds: z.number(), name: z.string(), limit: z.number().int(), used: z.number().int(), freeAt: Timestamp.nullable() }),
  ),
});
export type SemInfo = z.infer<typeof SemInfo>;

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

/** How many hosts are in each state. */
export function countHosts(hosts: readonly Pick<RolloutHost, 'state'>[]): Partial<Record<RolloutHostState, number>> {
  const counts: Partial<Record<RolloutHostState, number>> = {};
  for (const h of hosts) counts[h.state] = (counts[h.state] ?? 0) + 1;
  return counts;
}

/** Retained on `pushfleet/rollouts/{id}/state`: the whole rollout, republished on every change. */
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
  hosts: z.array(RolloutHost),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  endedAt: Timestamp.nullable(),
});
export type RolloutSnapshot = z.infer<typeof RolloutSnapshot>;

/** On `pushfleet/rollouts/{id}/events`: one change of the rollout or of one host. */
export const RolloutEvent = z.object({
  v: z.literal(SCHEMA_VERSION),
  id: RolloutId,
  at: Timestamp,
  /** Set for a host event. */
  agent: z.string().nullable(),
  /** The rollout's status for a rollout event, the host's state for a host event. */
  state: z.union([RolloutStatus, RolloutHostState]),
  detail: z.string().nullable(),
});
export type RolloutEvent = z.infer<typeof RolloutEvent>;

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
  v: z.literal(SCHEMA_VERSION),
  requestId: z.string(),
  ok: z.boolean(),
  error: z.string().nullable(),
  rollouts: z.array(RolloutSnapshot.omit({ hosts: true, policy: true }).extend({ counts: z.partialRecord(RolloutHostState, z.number().int()) })).optional(),
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

/**
 * The messages every part shares (pushes, hub and agent state) and `decode()`.
 * The engines' own messages sit beside the topic table in contract/ (orchestrator-, semaphore- and
 * rollout-messages.ts); contract/topic-table.ts says which schema belongs to which topic. Decode
 * with `decode()` at the boundary; nothing else trusts a payload.
 */
import { z } from 'zod';
import { isValidGitRef } from './git-ref.js';
import { TOPIC_LEVEL } from './topics.js';

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

export const Timestamp = z.string().datetime({ offset: true });

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

/** What an agent offers the jobs engine (agent config `jobs:`): action names, its limit, and how many run now. */
export const AgentJobsOffer = z.object({
  actions: z.array(z.string().max(128)).max(1000),
  maxConcurrent: z.number().int().positive(),
  running: z.number().int().nonnegative(),
});
export type AgentJobsOffer = z.infer<typeof AgentJobsOffer>;

/** What an agent offers the services engine (agent config `services:`): per action the grace its copies get (services.stopTimeout) and watchdog; its limit; how many run now. */
export const AgentServicesOffer = z.object({
  actions: z.record(z.string().regex(TOPIC_LEVEL), z.object({ stopTimeoutMs: z.number().int().positive(), watchdogSec: z.number().positive().optional() })),
  maxWorkers: z.number().int().positive(),
  running: z.number().int().nonnegative(),
});
export type AgentServicesOffer = z.infer<typeof AgentServicesOffer>;

export const AgentStatus = z.object({
  v: z.literal(SCHEMA_VERSION),
  agent: z.string(),
  state: z.enum(['online', 'offline']),
  labels: z.record(z.string(), z.string()),
  version: z.string(),
  startedAt: Timestamp.nullable(),
  at: Timestamp,
  /** Only from agents with a `jobs:` section; hubs before issue 12 ignore it. */
  jobs: AgentJobsOffer.optional(),
  /** Only from agents with a `services:` section. */
  services: AgentServicesOffer.optional(),
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

/** One `key.path: message` per problem (`apps.1.branch`); each unknown key gets its own line. */
export function issueLines(error: z.ZodError): string[] {
  const at = (path: readonly PropertyKey[]) => (path.length ? path.map(String).join('.') : '(root)');
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys' ? issue.keys.map((key) => `${at([...issue.path, key])}: unknown key`) : [`${at(issue.path)}: ${issue.message}`],
  );
}

export function describeIssues(error: z.ZodError): string {
  return issueLines(error).join('; ');
}

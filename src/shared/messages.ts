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
      message: z.string().max(65536),
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

export const AppStateName = z.enum(['idle', 'updating', 'deployed', 'failed', 'rolled-back']);
export type AppStateName = z.infer<typeof AppStateName>;

export const StepName = z.enum(['fetch', 'checkout', 'update', 'restart', 'health', 'rollback']);
export type StepName = z.infer<typeof StepName>;

export const AppState = z.object({
  v: z.literal(SCHEMA_VERSION),
  agent: z.string(),
  app: z.string(),
  repo: RepoName,
  /** The ref the deployed (or attempted) SHA came from. */
  ref: z.string().nullable(),
  state: AppStateName,
  /** What the working copy is on now. */
  sha: Sha.nullable(),
  /** The SHA the last update aimed for. */
  targetSha: Sha.nullable(),
  lastError: z
    .object({ step: StepName, message: z.string(), outputTail: z.string() })
    .nullable(),
  /** Milliseconds per step of the last update, and in total. */
  durations: z.partialRecord(z.enum([...StepName.options, 'total']), z.number().nonnegative()),
  updatedAt: Timestamp,
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

import { z } from 'zod';
import { SCHEMA_VERSION } from '../messages.js';
import { replyEnvelope, requestEnvelope } from './request-envelope.js';

/** Where the jobs engine's operator requests go, and its answers (`pushfleet jobs …`). */
export const JOBS_REQUEST = 'pushfleet/jobs/request';
export const jobsReplyTopic = (requestId: string): string => `pushfleet/jobs/replies/${requestId}`;

/** engines.jobs.prefix by default: the seed's. */
export const JOBS_DEFAULT_PREFIX = 'services/mqtt_job_listener';

export const jobCompleteTopic = (prefix: string, job: string): string => `${prefix}/job_complete/${job}`;
export const jobFailedTopic = (prefix: string, job: string): string => `${prefix}/job_failed/${job}`;
export const jobsRefreshTopic = (prefix: string): string => `${prefix}/refresh`;
export const jobsErrorTopic = (prefix: string): string => `${prefix}/error`;

const JobName = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$/, 'a job_name of the table');
const RunId = z.string().regex(/^[0-9a-f]{10}$/, 'a run id: 10 lowercase hex');

/** The model's JobCompletion, as it travels on job_complete/{job} and job_failed/{job}. */
export const JobCompletion = z.object({
  v: z.literal(SCHEMA_VERSION),
  run: RunId,
  job: JobName,
  name: z.string(),
  status: z.enum(['succeeded', 'failed', 'cancelled']),
  reason: z.string(),
  topic: z.string(),
  payload: z.string(),
  start: z.string().nullable(),
  end: z.string(),
  durationMs: z.number().nullable(),
});

/** `{prefix}/error`: a bad row, an unreadable table, a run that could not be carried out. */
export type JobsErrorEvent = { v: 1; kind: 'row' | 'table' | 'run'; line?: number; job?: string; reason: string };

export const JobsRequest = z.discriminatedUnion('op', [
  z.object({ ...requestEnvelope, op: z.literal('list') }).strict(),
  z.object({ ...requestEnvelope, op: z.literal('runs'), job: JobName.optional(), limit: z.number().int().positive().max(1000).default(50) }).strict(),
  z.object({ ...requestEnvelope, op: z.literal('show'), run: RunId }).strict(),
  z.object({ ...requestEnvelope, op: z.literal('logs'), run: RunId }).strict(),
  z.object({ ...requestEnvelope, op: z.literal('trigger'), job: JobName, payload: z.string() }).strict(),
]);
export type JobsRequest = z.infer<typeof JobsRequest>;

export const RunView = z.object({
  id: z.string(),
  job: z.string(),
  name: z.string(),
  executor: z.string(),
  topic: z.string(),
  payload: z.string(),
  params: z.record(z.string(), z.string()),
  status: z.string(),
  reason: z.string().optional(),
  agent: z.string().optional(),
  createdAt: z.number(),
  startedAt: z.number().optional(),
  endedAt: z.number().optional(),
  logs: z.string().optional(),
});
export type RunView = z.infer<typeof RunView>;

export const RowView = z.object({ line: z.number(), jobName: z.string(), mqttTopic: z.string(), executor: z.string(), concurrency: z.string(), target: z.string(), active: z.number() });
export type RowView = z.infer<typeof RowView>;

export const JobsReply = z.object({
  ...replyEnvelope,
  table: z.object({ location: z.string(), version: z.string().nullable(), error: z.string().nullable() }).optional(),
  rows: z.array(RowView).optional(),
  errors: z.array(z.object({ line: z.number(), jobName: z.string().optional(), reason: z.string() })).optional(),
  runs: z.array(RunView).optional(),
  run: RunView.optional(),
  logs: z.string().optional(),
});
export type JobsReply = z.infer<typeof JobsReply>;

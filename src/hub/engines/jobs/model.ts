/**
 * The jobs engine's shared vocabulary: a table row, a run, and the ports the engine drives
 * (executors, the table's source, the log store). Pure types; adapters live beside this file.
 */

/** `job_name`: a Kubernetes name part, short enough for `{job_name}-{10 hex}` to stay within 63. */
export const JOB_NAME = /^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$/;

export type ConcurrencyPolicy = 'allow' | 'forbid' | 'replace';

/** A parameter the row declares; a trigger payload (a JSON object) may fill it. */
export type JobParam = {
  /** Anchored regular expression (unicode) the value must match. */
  pattern: string;
  default?: string;
  required: boolean;
};

export type JobResources = {
  cpuRequest?: string;
  cpuLimit?: string;
  memoryRequest?: string;
  memoryLimit?: string;
  /** nvidia.com/gpu, requested and limited alike. */
  gpu?: number;
  /** ephemeral-storage. */
  diskRequest?: string;
  diskLimit?: string;
};

type RowCommon = {
  /** Where the row came from: 1-based line of the CSV (header is line 1) or of the YAML item. */
  line: number;
  jobName: string;
  /** MQTT filter; `+` and `#` work. */
  mqttTopic: string;
  concurrency: ConcurrencyPolicy;
  params: Record<string, JobParam>;
};

export type KubernetesRow = RowCommon & {
  executor: 'kubernetes';
  image: string;
  /** From the table only: a trigger never sets command, args, image or resources. */
  command?: string[];
  args?: string[];
  resources: JobResources;
  parallelism: number;
  completions: number;
  backoffLimit: number;
  activeDeadlineSeconds?: number;
};

export type AgentRow = RowCommon & {
  executor: 'agent';
  /** Name of an action in the chosen agent's own config (`actions:`). */
  action: string;
  /** Labels the agent must carry (all of them). */
  selector: Record<string, string>;
  timeoutSeconds: number;
};

export type JobRow = KubernetesRow | AgentRow;

/** One bad row of a table: reported, skipped; the others keep working. */
export type RowError = { line: number; jobName?: string; reason: string };

export type RunStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const FINISHED: readonly RunStatus[] = ['succeeded', 'failed', 'cancelled'];

export type Run = {
  /** 10 lowercase hex, unique: also the suffix of the Job's name. */
  id: string;
  job: string;
  /** `{job_name}-{id}`: the Kubernetes Job's name, never reused. */
  name: string;
  executor: JobRow['executor'];
  /** Where the trigger came from ('' for `pushfleet jobs trigger`) and what it carried (utf-8, bounded). */
  topic: string;
  payload: string;
  params: Record<string, string>;
  status: RunStatus;
  reason?: string;
  /** The agent chosen (agent executor). */
  agent?: string;
  createdAt: number;
  startedAt?: number;
  endedAt?: number;
  /** Where the logs were kept once the run ended (a file path or s3:// URL). */
  logs?: string;
};

/** What an executor observed about a run it started. */
export type RunUpdate =
  | { status: 'running'; at: number; agent?: string }
  | { status: 'succeeded' | 'failed'; at: number; reason: string };

/**
 * Runs rows of one kind. `start` is idempotent per run (a Job that already exists under the
 * run's name is the run's own: adopted, not an error), so a run recorded as pending before a
 * crash is started again safely.
 */
export interface JobExecutor {
  readonly kind: JobRow['executor'];
  /** An executor that hears back over MQTT (the agent one) names its filters; the engine subscribes and passes their messages on. */
  readonly subscriptions?: readonly string[];
  handle?(topic: string, payload: Buffer): void;
  start(run: Run, row: JobRow): Promise<void>;
  /** Reports the run's progress until it ends (once for each terminal update); returns the unwatch. */
  watch(run: Run, onUpdate: (update: RunUpdate) => void): () => void;
  /** Stops a run under way (the `replace` policy, a cancel); resolves once it no longer runs. */
  stop(run: Run): Promise<void>;
  /** The run's output so far (all pods' logs, or the agent's captured output). */
  logs(run: Run): Promise<string>;
  /** Frees what a finished run holds (deletes the Job and its pods). */
  remove(run: Run): Promise<void>;
}

/** The table as read: its text, a version that changes with it (ETag, mtime+size), and its format. */
export type TableText = { text: string; version: string; format: 'csv' | 'yaml' };

export interface TableSource {
  /** Where it is read from, for logs and errors. */
  readonly location: string;
  /** The table, or 'unchanged' when `since` is still its version. */
  read(since?: string): Promise<TableText | 'unchanged'>;
}

export interface LogStore {
  /** Keeps a finished run's logs; returns where (file path or s3:// URL). */
  put(run: Run, text: string): Promise<string>;
  get(run: Run): Promise<string | undefined>;
  delete(run: Run): Promise<void>;
}

/** Published on `{prefix}/job_complete/{job}` for every finished run, and on `{prefix}/job_failed/{job}` too when it failed. */
export type JobCompletion = {
  v: 1;
  run: string;
  job: string;
  name: string;
  status: 'succeeded' | 'failed' | 'cancelled';
  reason: string;
  topic: string;
  payload: string;
  start: string | null;
  end: string;
  durationMs: number | null;
};

import { z } from 'zod';

/** An `s3://bucket/key` location (the table) or `s3://bucket/prefix` (logs). */
export const S3_URL = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/;

/**
 * Where S3 locations live. Unset keys come from the AWS SDK's usual chain (AWS_REGION,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3, ~/.aws), so MinIO and other
 * S3-compatible stores need only `endpoint` and `forcePathStyle`.
 */
export const S3Settings = z
  .object({
    endpoint: z.url().optional(),
    region: z.string().min(1).optional(),
    forcePathStyle: z.boolean().default(false),
    /** File holding `<access key id>:<secret access key>`; never put the secret in the config itself. */
    credentialsFile: z.string().min(1).optional(),
  })
  .strict();
export type S3Settings = z.infer<typeof S3Settings>;

/** The jobs engine's settings (`engines.jobs` in the hub config; README.md beside this file). */
export const JobsConfig = z
  .object({
    /** The engine starts only once `table` is set: with no table there is nothing to trigger. */
    enabled: z.boolean().default(true),
    /** The jobs table: a file path, an https:// URL or s3://bucket/key; CSV (the seed's columns) or YAML (by extension). */
    table: z.string().min(1).optional(),
    /** Seconds between checks of the table for a change (file mtime+size, HTTP/S3 ETag). */
    reloadSeconds: z.number().positive().default(10),
    /** Topic prefix of completions, failures, refresh and error events (the seed's by default). */
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'use topic levels of letters, digits, ".", "_" or "-", without wildcards')
      .default('services/mqtt_job_listener'),
    /** Who may publish on the table's trigger topics (the hub decides, at the broker's door); operators may also run `pushfleet jobs trigger`. */
    triggerRoles: z.array(z.enum(['operator', 'agent', 'client'])).default(['operator', 'client']),
    s3: S3Settings.prefault({}),
    kubernetes: z
      .object({
        namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).max(63).default('default'),
        /** Path of a kubeconfig; unset: KUBECONFIG, ~/.kube/config, or the in-cluster service account. */
        kubeconfig: z.string().min(1).optional(),
        /** Context of the kubeconfig to use (default: its current-context). */
        context: z.string().min(1).optional(),
        /** Seconds a finished Job is kept before deletion (its logs are saved first). */
        ttlSecondsAfterFinished: z.number().int().min(0).default(300),
        /** Seconds between status checks of running Jobs when no watch is open. */
        pollSeconds: z.number().positive().default(5),
        /** Seconds a pod may stay unschedulable (PodScheduled=False) before its run fails; room for a cluster autoscaler to add a node. */
        unschedulableSeconds: z.number().min(0).default(300),
        /** Seconds a pod's image may fail to pull (ErrImagePull, ImagePullBackOff) before its run fails; registries have bad minutes. */
        imagePullSeconds: z.number().min(0).default(120),
      })
      .strict()
      .prefault({}),
    /** Where finished runs' logs are kept: a directory (default <stateDir>/job-logs) or s3://bucket/prefix. */
    logs: z.string().min(1).optional(),
    /** Largest trigger payload kept with a run and passed on (bytes). */
    maxPayloadBytes: z.number().int().positive().default(65_536),
    /** Finished runs kept in the history; older ones are forgotten (their logs too). */
    history: z.number().int().positive().default(10_000),
    /**
     * Seconds an agent running a run (agent executor) may be offline, or silent after a start,
     * before the run fails ("agent <id> went offline").
     */
    agentLostSeconds: z.number().positive().default(30),
    /** Runs under way at once; a trigger past it fails its run at once (reported, never dropped silently). */
    maxActiveRuns: z.number().int().positive().default(1000),
  })
  .strict();
export type JobsConfig = z.infer<typeof JobsConfig>;

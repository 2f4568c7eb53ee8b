import type { V1EnvVar, V1Job, V1ResourceRequirements } from '@kubernetes/client-node';
import { jobEnvironment } from '../../../shared/contract/jobs-messages.js';
import type { JobsConfig } from './config.js';
import type { JobResources, KubernetesRow, Run } from './model.js';

export type KubernetesSettings = JobsConfig['kubernetes'];

/** Labels every pushfleet Job and its pods carry: the hub finds its own by them, after a restart too. */
export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const JOB_LABEL = 'pushfleet.dev/job';
export const RUN_LABEL = 'pushfleet.dev/run';
export const TOPIC_ANNOTATION = 'pushfleet.dev/topic';
export const CONTAINER = 'job';

/**
 * Kubernetes' own ttlSecondsAfterFinished is the hub's deadline plus a day: the hub saves the logs,
 * reports the end and deletes the Job itself; Kubernetes deletes it only when the hub has been gone
 * for a day, so finished Jobs and their pods never pile up for good, while any ordinary outage or
 * restart still finds the Job (and its outcome and logs) there.
 */
export const SAFETY_NET_SECONDS = 86_400;

/** The selector of a run's Job and pods. */
export const runSelector = (run: Pick<Run, 'id'>): string => `${MANAGED_BY}=pushfleet,${RUN_LABEL}=${run.id}`;

function quantities(cpu: string | undefined, memory: string | undefined, disk: string | undefined, gpu: number | undefined): Record<string, string> | undefined {
  const q: Record<string, string> = {};
  if (cpu !== undefined) q.cpu = cpu;
  if (memory !== undefined) q.memory = memory;
  if (disk !== undefined) q['ephemeral-storage'] = disk;
  // An extended resource is requested and limited alike (Kubernetes refuses them unequal).
  if (gpu) q['nvidia.com/gpu'] = String(gpu);
  return Object.keys(q).length ? q : undefined;
}

function resources(r: JobResources): V1ResourceRequirements {
  const requests = quantities(r.cpuRequest, r.memoryRequest, r.diskRequest, r.gpu);
  const limits = quantities(r.cpuLimit, r.memoryLimit, r.diskLimit, r.gpu);
  return { ...(requests && { requests }), ...(limits && { limits }) };
}

/**
 * The batch/v1 Job of one run. Image, command, args and resources come from the table row only;
 * the trigger reaches the container as environment (its topic, payload and the row's parameters).
 */
export function jobManifest(run: Run, row: KubernetesRow, settings: Pick<KubernetesSettings, 'namespace' | 'ttlSecondsAfterFinished'>): V1Job {
  const labels = { [MANAGED_BY]: 'pushfleet', [JOB_LABEL]: row.jobName, [RUN_LABEL]: run.id };
  const env: V1EnvVar[] = Object.entries(jobEnvironment({ run: run.id, job: run.job, topic: run.topic, payload: run.payload, params: run.params })).map(([name, value]) => ({ name, value }));
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: run.name, namespace: settings.namespace, labels, annotations: { [TOPIC_ANNOTATION]: run.topic } },
    spec: {
      parallelism: row.parallelism,
      completions: row.completions,
      backoffLimit: row.backoffLimit,
      ...(row.activeDeadlineSeconds !== undefined && { activeDeadlineSeconds: row.activeDeadlineSeconds }),
      ttlSecondsAfterFinished: settings.ttlSecondsAfterFinished + SAFETY_NET_SECONDS,
      template: {
        metadata: { labels: { ...labels } },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: CONTAINER,
              image: row.image,
              ...(row.command && { command: [...row.command] }),
              ...(row.args && { args: [...row.args] }),
              env,
              resources: resources(row.resources),
            },
          ],
        },
      },
    },
  };
}

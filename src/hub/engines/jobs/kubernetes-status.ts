import type { V1Job, V1Pod } from '@kubernetes/client-node';
import type { KubernetesSettings } from './job-manifest.js';

/** How a Job ended, as Kubernetes says it. */
export type JobEnd = { status: 'succeeded' | 'failed'; at?: number; reason: string };

const ms = (t: Date | string | undefined): number | undefined => (t === undefined ? undefined : new Date(t).getTime());

const condition = (job: V1Job, ...types: string[]) => job.status?.conditions?.find((c) => types.includes(c.type) && c.status === 'True');

/**
 * The end of a Job, or undefined while it runs. FailureTarget and SuccessCriteriaMet (Kubernetes
 * 1.31+) come before Failed and Complete, while the last pods terminate: the outcome is known then.
 */
export function jobEnd(job: V1Job): JobEnd | undefined {
  const failed = condition(job, 'Failed', 'FailureTarget');
  if (failed) return { status: 'failed', at: ms(failed.lastTransitionTime), reason: `${failed.reason ?? 'Failed'}: ${failed.message ?? 'the Job failed'}` };
  const completions = job.spec?.completions ?? 1;
  const succeeded = job.status?.succeeded ?? 0;
  const complete = condition(job, 'Complete', 'SuccessCriteriaMet');
  if (complete || succeeded >= completions) {
    return { status: 'succeeded', at: ms(job.status?.completionTime) ?? ms(complete?.lastTransitionTime), reason: `Complete: ${succeeded}/${completions} pods succeeded` };
  }
  return undefined;
}

/** When the Job started pods, if it has any active. */
export function jobStarted(job: V1Job): number | undefined {
  return (job.status?.active ?? 0) > 0 || jobEnd(job) ? ms(job.status?.startTime) : undefined;
}

const IMAGE_ERRORS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName']);

/** Why each pending pod of `pods` cannot start right now, keyed by pod uid and cause, with the grace it gets. */
export function stuckPods(pods: V1Pod[], limits: Pick<KubernetesSettings, 'unschedulableSeconds' | 'imagePullSeconds'>): Map<string, { graceMs: number; reason: string }> {
  const stuck = new Map<string, { graceMs: number; reason: string }>();
  for (const pod of pods) {
    if (pod.status?.phase !== 'Pending') continue;
    const id = pod.metadata?.uid ?? pod.metadata?.name ?? '';
    const name = pod.metadata?.name ?? '?';
    const unscheduled = pod.status.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable');
    if (unscheduled) stuck.set(`${id}/Unschedulable`, { graceMs: limits.unschedulableSeconds * 1000, reason: `Unschedulable: pod ${name}: ${unscheduled.message ?? 'no node fits'}` });
    for (const c of pod.status.containerStatuses ?? []) {
      const waiting = c.state?.waiting;
      if (waiting?.reason && IMAGE_ERRORS.has(waiting.reason)) {
        stuck.set(`${id}/image`, { graceMs: limits.imagePullSeconds * 1000, reason: `${waiting.reason}: pod ${name}: ${waiting.message ?? `cannot pull ${c.image}`}` });
      }
    }
  }
  return stuck;
}

/**
 * Follows stuck pods across polls: a cause seen since `firstSeen` longer than its grace ends the run.
 * The grace is counted on the hub's clock from when it first saw the cause (after a restart, from
 * then again), never from the cluster's timestamps, so a skewed clock cannot cut it short.
 */
export function overdue(stuck: Map<string, { graceMs: number; reason: string }>, firstSeen: Map<string, number>, now: number): string | undefined {
  for (const key of [...firstSeen.keys()]) if (!stuck.has(key)) firstSeen.delete(key);
  for (const [key, { graceMs, reason }] of stuck) {
    const since = firstSeen.get(key) ?? now;
    firstSeen.set(key, since);
    if (now - since >= graceMs) return reason;
  }
  return undefined;
}

import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { jobEnd, jobStarted, overdue, stuckPods } from '../../src/hub/engines/jobs/kubernetes-status.js';

const at = new Date('2026-12-01T12:00:00Z');
const job = (spec: { completions?: number }, status: V1Job['status']): V1Job => ({ spec: { template: {}, ...spec }, status });
const cond = (type: string, reason: string, message: string) => ({ type, status: 'True', reason, message, lastTransitionTime: at });
const pending = (uid: string, status: V1Pod['status']): V1Pod => ({ metadata: { uid, name: `p-${uid}` }, status: { phase: 'Pending', ...status } });
const limits = { unschedulableSeconds: 60, imagePullSeconds: 30 };

describe('jobEnd', () => {
  it('is unknown while completions are missing, succeeded once they are all there', () => {
    expect(jobEnd(job({ completions: 3 }, { active: 1, succeeded: 2 }))).toBeUndefined();
    expect(jobEnd(job({ completions: 3 }, { succeeded: 3, completionTime: at }))).toEqual({ status: 'succeeded', at: at.getTime(), reason: 'Complete: 3/3 pods succeeded' });
  });

  it('takes the Failed or FailureTarget condition with its reason', () => {
    expect(jobEnd(job({}, { conditions: [cond('FailureTarget', 'DeadlineExceeded', 'Job was active longer than specified deadline')] }))).toEqual({
      status: 'failed',
      at: at.getTime(),
      reason: 'DeadlineExceeded: Job was active longer than specified deadline',
    });
  });

  it('ignores conditions that are not True', () => {
    expect(jobEnd(job({ completions: 1 }, { active: 1, conditions: [{ type: 'Failed', status: 'False' }] }))).toBeUndefined();
  });
});

describe('jobStarted', () => {
  it('is the start time once pods are active or the Job ended, not before', () => {
    expect(jobStarted(job({}, { startTime: at }))).toBeUndefined();
    expect(jobStarted(job({}, { startTime: at, active: 1 }))).toBe(at.getTime());
    expect(jobStarted(job({}, { startTime: at, succeeded: 1 }))).toBe(at.getTime());
  });
});

describe('stuck pods and their grace', () => {
  const unschedulable = pending('a', { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available' }] });
  const pullFails = pending('b', { containerStatuses: [{ name: 'job', image: 'x:1', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ErrImagePull', message: 'not found' } } }] });

  it('names the cause of each pending pod, and none of a running one', () => {
    const stuck = stuckPods([unschedulable, pullFails, { metadata: { uid: 'c' }, status: { phase: 'Running' } }], limits);
    expect([...stuck]).toEqual([
      ['a/Unschedulable', { graceMs: 60_000, reason: 'Unschedulable: pod p-a: 0/3 nodes are available' }],
      ['b/image', { graceMs: 30_000, reason: 'ErrImagePull: pod p-b: not found' }],
    ]);
  });

  it('fails only once a cause has lasted its grace, counted from when it was first seen', () => {
    const seen = new Map<string, number>();
    expect(overdue(stuckPods([unschedulable], limits), seen, 1000)).toBeUndefined();
    expect(overdue(stuckPods([unschedulable], limits), seen, 60_999)).toBeUndefined();
    expect(overdue(stuckPods([unschedulable], limits), seen, 61_000)).toBe('Unschedulable: pod p-a: 0/3 nodes are available');
  });

  it('starts the grace again when the pod got scheduled in between', () => {
    const seen = new Map<string, number>();
    overdue(stuckPods([unschedulable], limits), seen, 0);
    overdue(stuckPods([], limits), seen, 50_000);
    expect(overdue(stuckPods([unschedulable], limits), seen, 70_000)).toBeUndefined();
    expect(overdue(stuckPods([unschedulable], limits), seen, 130_000)).toMatch(/^Unschedulable/);
  });
});

import { describe, expect, it } from 'vitest';
import { jobManifest } from '../../src/hub/engines/jobs/job-manifest.js';
import { jobEnvironment } from '../../src/shared/contract/jobs-messages.js';
import { runOf, seedRow } from '../fixtures/kubernetes-row.js';

const settings = { namespace: 'braingeneers', ttlSecondsAfterFinished: 300 };

describe('jobManifest', () => {
  it("is the exact batch/v1 Job of a seed row's run", () => {
    const run = runOf(seedRow, '0a1b2c3d4e');
    expect(jobManifest(run, seedRow, settings)).toStrictEqual({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: 'spike-sort-0a1b2c3d4e',
        namespace: 'braingeneers',
        labels: { 'app.kubernetes.io/managed-by': 'pushfleet', 'pushfleet.dev/job': 'spike-sort', 'pushfleet.dev/run': '0a1b2c3d4e' },
        annotations: { 'pushfleet.dev/topic': 'experiments/2026-12-01-e1/upload_complete' },
      },
      spec: {
        parallelism: 1,
        completions: 1,
        backoffLimit: 6,
        ttlSecondsAfterFinished: 300 + 86_400,
        template: {
          metadata: { labels: { 'app.kubernetes.io/managed-by': 'pushfleet', 'pushfleet.dev/job': 'spike-sort', 'pushfleet.dev/run': '0a1b2c3d4e' } },
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                name: 'job',
                image: 'braingeneers/spike-sort:1.4',
                env: [
                  { name: 'PUSHFLEET_JOB_RUN', value: '0a1b2c3d4e' },
                  { name: 'PUSHFLEET_JOB_NAME', value: 'spike-sort' },
                  { name: 'PUSHFLEET_JOB_TOPIC', value: 'experiments/2026-12-01-e1/upload_complete' },
                  { name: 'PUSHFLEET_JOB_PAYLOAD', value: '{"uuid":"2026-12-01-e1"}' },
                ],
                resources: {
                  requests: { cpu: '2', memory: '8Gi', 'ephemeral-storage': '20Gi', 'nvidia.com/gpu': '1' },
                  limits: { cpu: '4', memory: '16Gi', 'ephemeral-storage': '40Gi', 'nvidia.com/gpu': '1' },
                },
              },
            ],
          },
        },
      },
    });
  });

  it('carries command, args, completions and deadline from the row, and parameters as environment only', () => {
    const row = { ...seedRow, command: ['python', 'sort.py'], args: ['--fast'], parallelism: 3, completions: 6, backoffLimit: 0, activeDeadlineSeconds: 3600 };
    const run = runOf(row, 'ffffffffff', { params: { uuid: 'e1', channel_map: 'maxwell' } });
    const job = jobManifest(run, row, settings);
    expect(job.spec).toMatchObject({ parallelism: 3, completions: 6, backoffLimit: 0, activeDeadlineSeconds: 3600 });
    const container = job.spec!.template.spec!.containers[0]!;
    expect(container.command).toEqual(['python', 'sort.py']);
    expect(container.args).toEqual(['--fast']);
    expect(container.env!.slice(4)).toEqual([
      { name: 'PUSHFLEET_JOB_PARAM_CHANNEL_MAP', value: 'maxwell' },
      { name: 'PUSHFLEET_JOB_PARAM_UUID', value: 'e1' },
    ]);
  });

  it('leaves out what the row leaves empty: no gpu, no disk, no resources at all', () => {
    const bare = { ...seedRow, resources: { cpuRequest: '500m' } };
    const c = jobManifest(runOf(bare, '0000000001'), bare, settings).spec!.template.spec!.containers[0]!;
    expect(c.resources).toStrictEqual({ requests: { cpu: '500m' } });
    expect('command' in c || 'args' in c).toBe(false);
    const none = { ...seedRow, resources: { gpu: 0 } };
    expect(jobManifest(runOf(none, '0000000002'), none, settings).spec!.template.spec!.containers[0]!.resources).toStrictEqual({});
  });

  it('gives an empty topic (a `pushfleet jobs trigger`) as an empty variable', () => {
    const run = runOf(seedRow, '0000000003', { topic: '' });
    expect(jobEnvironment({ ...run, run: run.id }).PUSHFLEET_JOB_TOPIC).toBe('');
  });
});

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { requestJobs } from '../../src/cli/jobs-request.js';
import { Cleanup } from '../support/cleanup.js';
import { startFakeKubernetes } from '../support/fake-kubernetes.js';
import { startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const P = 'services/mqtt_job_listener';
const SEED_HEADER = 'job_name,mqtt_topic,image,cpu_request,cpu_limit,memory_request,memory_limit,gpu,disk_request,disk_limit,parallelism';

describe('jobs engine with the Kubernetes executor', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it("runs the seed's CSV as-is: a trigger makes a Job, its end is published and chains to the next Job, whose failure takes the failure branch", async () => {
    const kube = await startFakeKubernetes(cleanup);
    const dir = cleanup.tempDir('pushfleet-jobs-k8s-');
    const table = join(dir, 'jobs.csv');
    writeFileSync(
      table,
      [
        SEED_HEADER,
        'ingest,lab/upload,ghcr.io/acme/ingest:1,500m,1,256Mi,512Mi,0,1Gi,2Gi,1',
        `sort,${P}/job_complete/ingest,ghcr.io/acme/sort:1,,,,,,,,`,
        `cleanup,${P}/job_failed/sort,ghcr.io/acme/cleanup:1,,,,,,,,`,
        'broken,lab/x,ghcr.io/acme/x:1,lots,,,,,,,',
        '',
      ].join('\n'),
    );
    const hub = await startTestHub(cleanup, 'aedes', { engines: { jobs: { table, kubernetes: { kubeconfig: kube.kubeconfig(dir), pollSeconds: 0.05 } } } });
    const seen = await watch(cleanup, hub.mqttUrl, `${P}/#`);
    const client = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => client.endAsync(true));
    const listed = await requestJobs(client, { op: 'list' }, 10);
    expect(listed.rows!.map((r) => [r.jobName, r.executor])).toEqual([['ingest', 'kubernetes'], ['sort', 'kubernetes'], ['cleanup', 'kubernetes']]);
    expect(listed.errors).toEqual([{ line: 5, jobName: 'broken', reason: expect.stringMatching(/cpu_request/) }]);

    await client.publishAsync('lab/upload', '{"file":"a.raw"}', { qos: 1 });
    const job = (prefix: string) => waitFor(`a Job ${prefix}-…`, () => kube.jobNames().find((n) => n.startsWith(`${prefix}-`)));
    const ingest = await job('ingest');
    kube.setLog(kube.addPod(ingest), 'ingested a.raw\n');
    kube.exitPod(kube.podNames(ingest)[0]!, 0);
    const sort = await job('sort');
    kube.exitPod(kube.addPod(sort), 2);
    // The Job controller gives up past backoffLimit (0, the seed's default).
    kube.failJob(sort, 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
    await waitFor(() => `sort's end: ${JSON.stringify(seen.messages.map((m) => m.topic))} jobs ${kube.jobNames()}`, () => seen.messages.some((m) => m.topic.endsWith('/sort')), 15_000);
    const cleanupJob = await job('cleanup');
    kube.exitPod(kube.addPod(cleanupJob), 0);
    await waitFor('cleanup done', () => seen.messages.some((m) => m.topic === `${P}/job_complete/cleanup`), 30_000);

    const of = (topic: string) => seen.messages.filter((m) => m.topic === topic).map((m) => JSON.parse(m.payload) as { run: string; status: string; reason: string; payload: string });
    expect(of(`${P}/job_complete/ingest`)).toEqual([expect.objectContaining({ status: 'succeeded', payload: '{"file":"a.raw"}' })]);
    expect(of(`${P}/job_failed/sort`)).toEqual([expect.objectContaining({ status: 'failed', reason: expect.stringMatching(/BackoffLimitExceeded/) })]);
    expect(of(`${P}/job_complete/cleanup`)).toEqual([expect.objectContaining({ status: 'succeeded' })]);
    const ingestRun = of(`${P}/job_complete/ingest`)[0]!.run;
    expect(ingest).toBe(`ingest-${ingestRun}`);
    expect((await requestJobs(client, { op: 'logs', run: ingestRun }, 10)).logs).toContain('ingested a.raw');
    // Finished Jobs are deleted once their logs are kept.
    await waitFor('the Jobs deleted', () => kube.jobNames().length === 0, 10_000);
  });
});

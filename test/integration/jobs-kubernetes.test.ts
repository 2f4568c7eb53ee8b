import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/hub/engines/engine.js';
import { JobsConfig } from '../../src/hub/engines/jobs/config.js';
import { jobManifest } from '../../src/hub/engines/jobs/job-manifest.js';
import { createKubernetesExecutor, loadKubeConfig } from '../../src/hub/engines/jobs/kubernetes-executor.js';
import type { KubernetesRow, Run, RunUpdate } from '../../src/hub/engines/jobs/model.js';
import { createLogger } from '../../src/shared/logger.js';
import { runOf, seedRow } from '../fixtures/kubernetes-row.js';
import { Cleanup } from '../support/cleanup.js';
import { startFakeKubernetes, type FakeKubernetes } from '../support/fake-kubernetes.js';
import { waitFor } from '../support/wait.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const log = createLogger('test', 'silent');
let ids = 0;
const nextId = () => (++ids).toString(16).padStart(10, '0');

async function setup(overrides: Partial<JobsConfig['kubernetes']> = {}) {
  const kube = await startFakeKubernetes(cleanup);
  const dir = cleanup.tempDir('jobs-k8s-');
  const settings = JobsConfig.parse({ kubernetes: { kubeconfig: kube.kubeconfig(dir), pollSeconds: 0.02, unschedulableSeconds: 0.2, imagePullSeconds: 0.2, ...overrides } }).kubernetes;
  const executor = () => createKubernetesExecutor(settings, { clock: systemClock, log });
  const exec = executor();
  /** Starts and watches a run of `row`; its updates land in `updates`. */
  const launch = async (row: KubernetesRow = seedRow, run: Run = runOf(row, nextId()), on = exec) => {
    await on.start(run, row);
    const updates: RunUpdate[] = [];
    const unwatch = on.watch(run, (u) => updates.push(u));
    cleanup.defer(unwatch);
    return { run, updates, unwatch };
  };
  return { kube, dir, settings, exec, executor, launch };
}

const ended = (updates: RunUpdate[]) => waitFor('a terminal update', () => updates.find((u) => u.status !== 'running'));
const creates = (kube: FakeKubernetes) => kube.requests.filter((r) => r.method === 'POST');
const FORBIDDEN = 'jobs.batch is forbidden: User "system:serviceaccount:pushfleet:hub" cannot create resource "jobs" in API group "batch" in the namespace "default"';

describe('kubernetes executor: create', () => {
  it('sends the exact Job manifest of the run, in the configured namespace, with the kubeconfig token', async () => {
    const { kube, exec, settings } = await setup({ namespace: 'default' });
    const run = runOf(seedRow, nextId(), { params: { uuid: 'e1' } });
    await exec.start(run, seedRow);
    const [post, ...more] = creates(kube);
    expect(more).toEqual([]);
    expect(post!.path).toBe('/apis/batch/v1/namespaces/default/jobs');
    expect(post!.body).toStrictEqual(JSON.parse(JSON.stringify(jobManifest(run, seedRow, settings))));
    expect(post!.body.metadata.labels['pushfleet.dev/run']).toBe(run.id);
    expect(post!.body.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu']).toBe('1');
    expect(post!.body.spec.template.spec.containers[0].env).toContainEqual({ name: 'PUSHFLEET_JOB_PARAM_UUID', value: 'e1' });
    expect(kube.jobNames()).toEqual([run.name]);
  });

  it('fails the run with a clear reason when the cluster refuses the credentials', async () => {
    const { kube, dir, settings } = await setup();
    const wrong = createKubernetesExecutor({ ...settings, kubeconfig: kube.kubeconfig(dir, 'not-the-token') }, { clock: systemClock, log });
    await expect(wrong.start(runOf(seedRow, nextId()), seedRow)).rejects.toThrow("Unauthorized: the cluster refused the hub's credentials");
    expect(kube.jobNames()).toEqual([]);
  });

  it("turns 403 into Kubernetes' message and what to grant", async () => {
    const { kube, exec } = await setup();
    kube.fault({ method: 'POST', path: /\/jobs$/, times: 1, code: 403, reason: 'Forbidden', message: FORBIDDEN });
    await expect(exec.start(runOf(seedRow, nextId()), seedRow)).rejects.toThrow(`forbidden: ${FORBIDDEN}: give the hub's service account create on jobs in default`);
    expect(creates(kube)).toHaveLength(1);
  });

  it('gives 422 Invalid as the API server words it, without retrying', async () => {
    const { kube, exec } = await setup();
    const bad = { ...seedRow, image: '' };
    await expect(exec.start(runOf(bad, nextId()), bad)).rejects.toThrow(/did not create Job .*spec\.template\.spec\.containers: Required value/);
    expect(creates(kube)).toHaveLength(1);
  });

  it('creates through 500s and dropped connections, one Job', async () => {
    const { kube, exec } = await setup();
    kube.fault({ method: 'POST', path: /\/jobs$/, times: 2, code: 500, reason: 'InternalError', message: 'etcdserver: request timed out' });
    kube.fault({ method: 'POST', path: /\/jobs$/, times: 1, drop: true });
    const run = runOf(seedRow, nextId());
    await exec.start(run, seedRow);
    expect(creates(kube)).toHaveLength(4);
    expect(kube.jobNames()).toEqual([run.name]);
  });

  it("adopts a Job already under the run's name that carries the run's label (a start again after a crash)", async () => {
    const { kube, exec, settings, launch } = await setup();
    const run = runOf(seedRow, nextId());
    kube.putJob('default', jobManifest(run, seedRow, settings));
    const { updates } = await launch(seedRow, run);
    expect(kube.jobNames()).toEqual([run.name]);
    kube.exitPod(kube.addPod(run.name), 0);
    expect(await ended(updates)).toMatchObject({ status: 'succeeded' });
    expect(exec.kind).toBe('kubernetes');
  });

  it("refuses a Job of the same name that is another run's, naming it", async () => {
    const { kube, exec, settings } = await setup();
    const run = runOf(seedRow, nextId());
    kube.putJob('default', jobManifest({ ...run, id: 'eeeeeeeeee' }, seedRow, settings));
    await expect(exec.start(run, seedRow)).rejects.toThrow(`Job ${run.name} already exists in default and is not this run's (its pushfleet.dev/run is eeeeeeeeee)`);
    expect(kube.job(run.name).metadata.labels?.['pushfleet.dev/run']).toBe('eeeeeeeeee');
  });
});

describe('kubernetes executor: status', () => {
  it('reports running from the Job start time, then succeeded once all completions succeed', async () => {
    const { kube, launch } = await setup();
    const row = { ...seedRow, parallelism: 2, completions: 2 };
    const { run, updates } = await launch(row);
    const [a, b] = [kube.addPod(run.name), kube.addPod(run.name)];
    const running = await waitFor('running', () => updates.find((u) => u.status === 'running'));
    expect(running.at).toBe(new Date(kube.job(run.name).status.startTime).getTime());
    kube.exitPod(a!, 0);
    await new Promise((r) => setTimeout(r, 100));
    expect(updates.map((u) => u.status)).toEqual(['running']);
    kube.exitPod(b!, 0);
    expect(await ended(updates)).toEqual({ status: 'succeeded', at: new Date(kube.job(run.name).status.completionTime).getTime(), reason: 'Complete: 2/2 pods succeeded' });
    await new Promise((r) => setTimeout(r, 100));
    expect(updates.map((u) => u.status)).toEqual(['running', 'succeeded']);
  });

  it.each([
    ['BackoffLimitExceeded', 'Job has reached the specified backoff limit'],
    ['DeadlineExceeded', 'Job was active longer than specified deadline'],
  ])('fails with the Job condition %s and its message', async (reason, message) => {
    const { kube, launch } = await setup();
    const { run, updates } = await launch({ ...seedRow, backoffLimit: 0, activeDeadlineSeconds: 60 });
    kube.addPod(run.name);
    kube.failJob(run.name, reason, message);
    expect(await ended(updates)).toMatchObject({ status: 'failed', reason: `${reason}: ${message}` });
  });

  it("fails when a pod stays unschedulable past unschedulableSeconds, with the scheduler's message", async () => {
    const { kube, launch } = await setup();
    const { run, updates } = await launch();
    const pod = kube.addPod(run.name, 'unschedulable');
    expect(await ended(updates)).toMatchObject({ status: 'failed', reason: `Unschedulable: pod ${pod}: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.` });
  });

  it("does not fail a pod that waits for a node within unschedulableSeconds", async () => {
    const { kube, launch } = await setup({ unschedulableSeconds: 3600 });
    const { run, updates } = await launch();
    kube.addPod(run.name, 'unschedulable');
    const polls = kube.requests.length;
    await waitFor('several polls', () => kube.requests.length > polls + 10);
    expect(updates.map((u) => u.status)).toEqual(['running']);
  });

  it('fails when the image cannot be pulled past imagePullSeconds', async () => {
    const { kube, launch } = await setup();
    const { run, updates } = await launch();
    const pod = kube.addPod(run.name, 'imagePullBackOff');
    expect(await ended(updates)).toMatchObject({ status: 'failed', reason: `ImagePullBackOff: pod ${pod}: Back-off pulling image "braingeneers/spike-sort:1.4"` });
  });

  it('fails a run whose Job vanished before it ended, saying so', async () => {
    const { kube, launch } = await setup();
    const { run, updates } = await launch();
    kube.addPod(run.name);
    await waitFor('running', () => updates.find((u) => u.status === 'running'));
    kube.forget(run.name);
    expect((await ended(updates)) as { reason: string }).toMatchObject({ status: 'failed', reason: expect.stringContaining(`Job ${run.name} is gone from default before the hub saw it end`) });
  });

  it('loses no terminal update to 500s and dropped connections, and reports it once', async () => {
    const { kube, launch } = await setup();
    const { run, updates } = await launch();
    kube.addPod(run.name);
    await waitFor('running', () => updates.find((u) => u.status === 'running'));
    kube.fault({ method: 'GET', path: /\/pods$/, times: 3, code: 503, reason: 'ServiceUnavailable', message: 'the server is currently unable to handle the request' });
    kube.fault({ method: 'GET', path: /\/pods$/, times: 2, drop: true });
    await waitFor('the pod list faults used', () => kube.faultsLeft() === 0);
    kube.fault({ method: 'GET', path: /\/jobs$/, times: 4, code: 500, reason: 'InternalError', message: 'etcdserver: leader changed' });
    kube.fault({ method: 'GET', path: /\/jobs$/, times: 3, drop: true });
    kube.exitPod(kube.podNames(run.name)[0]!, 0);
    expect(await ended(updates)).toMatchObject({ status: 'succeeded' });
    expect(kube.faultsLeft()).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(updates.map((u) => u.status)).toEqual(['running', 'succeeded']);
  });

  it('picks up a running Job after a restart: a new executor watching the run reports its end', async () => {
    const { kube, executor, launch } = await setup();
    const { run, unwatch } = await launch();
    kube.addPod(run.name);
    unwatch();
    const after = executor();
    const updates: RunUpdate[] = [];
    cleanup.defer(after.watch(run, (u) => updates.push(u)));
    await waitFor('running', () => updates.find((u) => u.status === 'running'));
    kube.exitPod(kube.podNames(run.name)[0]!, 0);
    expect(await ended(updates)).toMatchObject({ status: 'succeeded' });
  });

  it('reports a Job that ended while nobody watched: running (its start) then its end', async () => {
    const { kube, executor, launch } = await setup();
    const { run, unwatch } = await launch();
    unwatch();
    kube.exitPod(kube.addPod(run.name), 0);
    const updates: RunUpdate[] = [];
    cleanup.defer(executor().watch(run, (u) => updates.push(u)));
    await ended(updates);
    expect(updates.map((u) => u.status)).toEqual(['running', 'succeeded']);
  });
});

describe('kubernetes executor: logs, stop, remove', () => {
  it("concatenates every pod's log under a header, and says why a pod has none", async () => {
    const { kube, exec, launch } = await setup();
    const { run } = await launch({ ...seedRow, parallelism: 3, completions: 3 });
    const [a, b] = [kube.addPod(run.name), kube.addPod(run.name)];
    const c = kube.addPod(run.name, 'imagePullBackOff');
    kube.setLog(a, 'sorting 1/2\ndone\n');
    kube.setLog(b, 'no trailing newline');
    kube.exitPod(a, 0);
    expect(await exec.logs(run)).toBe(
      `==> pod ${a} (Succeeded) <==\nsorting 1/2\ndone\n` +
        `==> pod ${b} (Running) <==\nno trailing newline\n` +
        `==> pod ${c} (Pending) <==\n(no log: container "job" in pod "${c}" is waiting to start: ContainerCreating)\n`,
    );
    const reads = kube.requests.filter((r) => r.path.endsWith('/log'));
    expect(reads.map((r) => r.query.container)).toEqual(['job', 'job', 'job']);
    expect(kube.requests.find((r) => r.path.endsWith('/pods') && r.query.labelSelector?.includes(run.id))!.query.labelSelector).toBe(`app.kubernetes.io/managed-by=pushfleet,pushfleet.dev/run=${run.id}`);
  });

  it('removes a finished Job in the background, and a gone one without error', async () => {
    const { kube, exec, launch } = await setup();
    const { run, updates } = await launch();
    kube.exitPod(kube.addPod(run.name), 0);
    await ended(updates);
    await exec.remove(run);
    expect(kube.jobNames()).toEqual([]);
    await exec.remove(run);
    const deletes = kube.requests.filter((r) => r.method === 'DELETE');
    expect(deletes.map((r) => [r.path, r.query.propagationPolicy])).toEqual([
      [`/apis/batch/v1/namespaces/default/jobs/${run.name}`, 'Background'],
      [`/apis/batch/v1/namespaces/default/jobs/${run.name}`, 'Background'],
    ]);
  });

  it('stops a running Job in the foreground and resolves only once it is gone, without a failure for the watcher', async () => {
    const { kube, exec, launch } = await setup();
    kube.foregroundDeleteMs = 300;
    const { run, updates } = await launch();
    kube.addPod(run.name);
    await waitFor('running', () => updates.find((u) => u.status === 'running'));
    await exec.stop(run);
    expect(kube.jobNames()).toEqual([]);
    const del = kube.requests.find((r) => r.method === 'DELETE')!;
    expect(del.query.propagationPolicy).toBe('Foreground');
    const after = kube.requests.slice(kube.requests.indexOf(del) + 1).filter((r) => r.method === 'GET' && r.path.endsWith(`/jobs/${run.name}`));
    expect(after.length).toBeGreaterThan(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(updates.map((u) => u.status)).toEqual(['running']);
    await exec.stop(run);
  });
});

describe('kubernetes executor: configuration', () => {
  it('names the key when the kubeconfig file or its context is missing', async () => {
    const { dir, kube } = await setup();
    expect(() => loadKubeConfig({ kubeconfig: `${dir}/nope.yaml` })).toThrow(`engines.jobs.kubernetes.kubeconfig: no file ${dir}/nope.yaml`);
    expect(() => loadKubeConfig({ kubeconfig: kube.kubeconfig(dir), context: 'prod' })).toThrow('engines.jobs.kubernetes.context: the kubeconfig has no context "prod" (it has: fake)');
  });

  it('reads KUBECONFIG when no file is configured, and says what to set when there is nothing', async () => {
    const { dir, kube } = await setup();
    const saved = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME, KUBERNETES_SERVICE_HOST: process.env.KUBERNETES_SERVICE_HOST };
    cleanup.defer(() => Object.entries(saved).forEach(([k, v]) => (v === undefined ? delete process.env[k] : (process.env[k] = v))));
    process.env.KUBECONFIG = kube.kubeconfig(dir);
    expect(loadKubeConfig({}).getCurrentCluster()?.server).toBe(kube.url);
    delete process.env.KUBECONFIG;
    delete process.env.KUBERNETES_SERVICE_HOST;
    process.env.HOME = cleanup.tempDir('no-home-');
    expect(() => loadKubeConfig({})).toThrow('engines.jobs.kubernetes: no Kubernetes configuration: set engines.jobs.kubernetes.kubeconfig or KUBECONFIG, create ~/.kube/config, or run the hub in the cluster');
  });
});

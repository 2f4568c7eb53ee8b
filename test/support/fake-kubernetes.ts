import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Cleanup } from './cleanup.js';

export type KubeRequest = { method: string; path: string; query: Record<string, string>; body: any };
/** A made-up answer for the next `times` requests that match: a Status with `code`, or a dropped connection. */
export type KubeFault = { method?: string; path: RegExp; times: number } & ({ code: number; reason: string; message: string } | { drop: true });

type Obj = { metadata: { name: string; namespace: string; labels?: Record<string, string>; [k: string]: any }; [k: string]: any };

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const status = (code: number, reason: string, message: string, details: object = {}) => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, details, code });

/** `a=b,c==d,e!=f,g,!h` against an object's labels, as the API server reads a labelSelector. */
function matches(selector: string | undefined, labels: Record<string, string> = {}): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const ne = /^([^!=]+)!=(.*)$/.exec(term);
    if (ne) return labels[ne[1]!] !== ne[2];
    const eq = /^([^!=]+)==?(.*)$/.exec(term);
    if (eq) return labels[eq[1]!] === eq[2];
    return term.startsWith('!') ? !(term.slice(1) in labels) : term in labels;
  });
}

/**
 * A local stand-in for the Kubernetes API server, speaking its wire format for what the jobs
 * engine uses: Jobs (create, get, list by label with paging, delete with a propagation policy),
 * Pods (list by label, log) and Status objects for errors. The test plays the Job controller and
 * the kubelet with the controls below; every request is recorded, and every one must carry the
 * bearer token of the kubeconfig this writes.
 */
export async function startFakeKubernetes(cleanup: Cleanup) {
  const token = randomUUID();
  const requests: KubeRequest[] = [];
  const faults: KubeFault[] = [];
  const jobs = new Map<string, Obj>();
  const pods = new Map<string, Obj>();
  const logs = new Map<string, string>();
  let version = 1;
  let podCount = 0;
  const key = (ns: string, name: string) => `${ns}/${name}`;
  const touch = (o: Obj) => (o.metadata.resourceVersion = String(++version));

  function list(kind: string, apiVersion: string, store: Map<string, Obj>, ns: string, q: Record<string, string>) {
    const all = [...store.values()].filter((o) => o.metadata.namespace === ns && matches(q.labelSelector, o.metadata.labels)).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const from = q.continue ? Number(Buffer.from(q.continue, 'base64url').toString()) : 0;
    const limit = q.limit ? Number(q.limit) : all.length;
    const items = all.slice(from, from + limit);
    const more = from + limit < all.length;
    return { kind, apiVersion, metadata: { resourceVersion: String(version), ...(more && { continue: Buffer.from(String(from + limit)).toString('base64url') }) }, items };
  }

  function createJob(ns: string, body: any): [number, object] {
    const name = body?.metadata?.name;
    if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 63) {
      return [422, status(422, 'Invalid', `Job.batch "${name}" is invalid: metadata.name: Invalid value: "${name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'`, { name, group: 'batch', kind: 'Job', causes: [{ reason: 'FieldValueInvalid', field: 'metadata.name' }] })];
    }
    const containers = body?.spec?.template?.spec?.containers;
    if (!Array.isArray(containers) || !containers.length || containers.some((c: any) => !c.image)) {
      return [422, status(422, 'Invalid', `Job.batch "${name}" is invalid: spec.template.spec.containers: Required value`, { name, group: 'batch', kind: 'Job' })];
    }
    if (jobs.has(key(ns, name))) return [409, status(409, 'AlreadyExists', `jobs.batch "${name}" already exists`, { name, group: 'batch', kind: 'jobs' })];
    const uid = randomUUID();
    const job: Obj = structuredClone(body);
    job.metadata = { ...job.metadata, namespace: ns, uid, generation: 1, creationTimestamp: now() };
    const controllerLabels = { 'batch.kubernetes.io/controller-uid': uid, 'batch.kubernetes.io/job-name': name, 'controller-uid': uid, 'job-name': name };
    job.spec = { completionMode: 'NonIndexed', suspend: false, ...job.spec, selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } } };
    job.spec.template.metadata = { ...job.spec.template.metadata, labels: { ...job.spec.template.metadata?.labels, ...controllerLabels } };
    job.status = {};
    touch(job);
    jobs.set(key(ns, name), job);
    return [201, job];
  }

  function deleteJob(ns: string, name: string, policy: string | undefined): [number, object] {
    const job = jobs.get(key(ns, name));
    if (!job) return [404, status(404, 'NotFound', `jobs.batch "${name}" not found`, { name, group: 'batch', kind: 'jobs' })];
    const own = [...pods.values()].filter((p) => p.metadata.namespace === ns && p.metadata.labels?.['job-name'] === name);
    if (policy === 'Foreground') {
      // The garbage collector deletes the pods first; the Job goes once they are gone.
      job.metadata.deletionTimestamp = now();
      job.metadata.finalizers = ['foregroundDeletion'];
      touch(job);
      setTimeout(() => {
        for (const p of own) pods.delete(key(ns, p.metadata.name));
        jobs.delete(key(ns, name));
      }, controls.foregroundDeleteMs);
      return [200, job];
    }
    jobs.delete(key(ns, name));
    if (policy !== 'Orphan') setImmediate(() => own.forEach((p) => pods.delete(key(ns, p.metadata.name))));
    return [200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: 'batch', kind: 'jobs', uid: job.metadata.uid } }];
  }

  function podLog(ns: string, name: string, q: Record<string, string>): [number, object | string] {
    const pod = pods.get(key(ns, name));
    if (!pod) return [404, status(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' })];
    const container = q.container ?? pod.spec.containers[0].name;
    if (!pod.spec.containers.some((c: any) => c.name === container)) return [400, status(400, 'BadRequest', `container ${container} is not valid for pod ${name}`)];
    if (pod.status.phase === 'Pending') return [400, status(400, 'BadRequest', `container "${container}" in pod "${name}" is waiting to start: ContainerCreating`)];
    const text = logs.get(name) ?? '';
    return [200, q.limitBytes ? Buffer.from(text).subarray(0, Number(q.limitBytes)).toString() : text];
  }

  function route(method: string, path: string, q: Record<string, string>, body: any): [number, object | string] {
    let m: RegExpExecArray | null;
    if ((m = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs$/.exec(path))) {
      if (method === 'GET') return [200, list('JobList', 'batch/v1', jobs, m[1]!, q)];
      if (method === 'POST') return createJob(m[1]!, body);
    } else if ((m = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs\/([^/]+)$/.exec(path))) {
      const job = jobs.get(key(m[1]!, m[2]!));
      if (method === 'GET') return job ? [200, job] : [404, status(404, 'NotFound', `jobs.batch "${m[2]}" not found`, { name: m[2], group: 'batch', kind: 'jobs' })];
      if (method === 'DELETE') return deleteJob(m[1]!, m[2]!, q.propagationPolicy ?? body?.propagationPolicy);
    } else if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(path)) && method === 'GET') {
      return [200, list('PodList', 'v1', pods, m[1]!, q)];
    } else if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/log$/.exec(path)) && method === 'GET') {
      return podLog(m[1]!, m[2]!, q);
    } else {
      return [404, status(404, 'NotFound', 'the server could not find the requested resource')];
    }
    return [405, status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`)];
  }

  const server = createServer(async (req, res: ServerResponse) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const url = new URL(req.url!, 'http://fake');
    const request: KubeRequest = { method: req.method!, path: url.pathname, query: Object.fromEntries(url.searchParams), body: raw ? JSON.parse(raw) : null };
    requests.push(request);
    const send = (code: number, answer: object | string) => {
      res.writeHead(code, { 'content-type': typeof answer === 'string' ? 'text/plain' : 'application/json' });
      res.end(typeof answer === 'string' ? answer : JSON.stringify(answer));
    };
    if (req.headers.authorization !== `Bearer ${token}`) return send(401, status(401, 'Unauthorized', 'Unauthorized'));
    const fault = faults.find((f) => f.times > 0 && f.path.test(request.path) && (!f.method || f.method === request.method));
    if (fault) {
      fault.times--;
      if ('drop' in fault) return void req.socket.destroy();
      return send(fault.code, status(fault.code, fault.reason, fault.message));
    }
    const [code, answer] = route(request.method, request.path, request.query, request.body);
    send(code, answer);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.defer(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const jobOf = (name: string, ns = 'default') => {
    const job = jobs.get(key(ns, name));
    if (!job) throw new Error(`fake kubernetes: no Job ${ns}/${name}`);
    return job;
  };
  const podsOf = (job: Obj) => [...pods.values()].filter((p) => p.metadata.labels?.['job-name'] === job.metadata.name && p.metadata.namespace === job.metadata.namespace);
  const active = (job: Obj) => podsOf(job).filter((p) => p.status.phase === 'Pending' || p.status.phase === 'Running');
  const recount = (job: Obj) => {
    const all = podsOf(job);
    job.status.active = active(job).length || undefined;
    job.status.succeeded = all.filter((p) => p.status.phase === 'Succeeded').length || undefined;
    job.status.failed = all.filter((p) => p.status.phase === 'Failed').length || undefined;
    touch(job);
  };
  const condition = (type: string, reason: string, message: string) => ({ type, status: 'True', reason, message, lastProbeTime: now(), lastTransitionTime: now() });

  const controls = {
    url,
    token,
    requests,
    /** How long a Foreground deletion keeps the Job (with its deletionTimestamp) before it is gone. */
    foregroundDeleteMs: 50,
    /** Writes a kubeconfig for this server (bearer token auth) into `dir`; its context is `fake`. */
    kubeconfig(dir: string, tokenOverride: string = token): string {
      const path = join(dir, 'kubeconfig.yaml');
      writeFileSync(path, stringify({
        apiVersion: 'v1',
        kind: 'Config',
        // client-node speaks plain http only to a cluster marked so (as for `kubectl proxy`).
        clusters: [{ name: 'fake', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'hub', user: { token: tokenOverride } }],
        contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'hub', namespace: 'default' } }],
        'current-context': 'fake',
      }));
      return path;
    },
    fault(f: KubeFault): void {
      faults.push(f);
    },
    /** Made-up answers not given yet. */
    faultsLeft: () => faults.reduce((n, f) => n + f.times, 0),
    job: jobOf,
    jobNames: (ns = 'default') => [...jobs.values()].filter((j) => j.metadata.namespace === ns).map((j) => j.metadata.name),
    podNames: (name: string, ns = 'default') => podsOf(jobOf(name, ns)).map((p) => p.metadata.name),
    /** A Job made outside the executor (a clash, a Job from an earlier start), as the API stores it. */
    putJob(ns: string, body: object): void {
      const [code, answer] = createJob(ns, body);
      if (code !== 201) throw new Error(`fake kubernetes: ${JSON.stringify(answer)}`);
    },
    /** The Job controller made a pod; `state` says how far the kubelet got with it. */
    addPod(name: string, state: 'running' | 'unschedulable' | 'imagePullBackOff' = 'running', ns = 'default', message = '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.'): string {
      const job = jobOf(name, ns);
      const podName = `${name}-${String(++podCount).padStart(5, '0')}`;
      const template = job.spec.template;
      const image = template.spec.containers[0].image;
      const st: any =
        state === 'running'
          ? { phase: 'Running', startTime: now(), conditions: [{ type: 'PodScheduled', status: 'True' }], containerStatuses: [{ name: 'job', image, ready: true, state: { running: { startedAt: now() } } }] }
          : state === 'unschedulable'
            ? { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: now() }] }
            : { phase: 'Pending', startTime: now(), conditions: [{ type: 'PodScheduled', status: 'True' }], containerStatuses: [{ name: 'job', image, ready: false, state: { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` } } }] };
      const pod: Obj = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: podName, namespace: ns, uid: randomUUID(), creationTimestamp: now(), labels: { ...template.metadata.labels }, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata.uid, controller: true }] },
        spec: structuredClone(template.spec),
        status: st,
      };
      touch(pod);
      pods.set(key(ns, podName), pod);
      job.status.startTime ??= now();
      recount(job);
      return podName;
    },
    setLog(pod: string, text: string): void {
      logs.set(pod, text);
    },
    /** The pod's container exited: 0 is Succeeded, anything else Failed. */
    exitPod(pod: string, exitCode: number, ns = 'default'): void {
      const p = pods.get(key(ns, pod));
      if (!p) throw new Error(`fake kubernetes: no pod ${ns}/${pod}`);
      p.status.phase = exitCode === 0 ? 'Succeeded' : 'Failed';
      p.status.containerStatuses = [{ name: 'job', ready: false, state: { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error' } } }];
      touch(p);
      const job = jobOf(p.metadata.labels!['job-name']!, ns);
      recount(job);
      if ((job.status.succeeded ?? 0) >= (job.spec.completions ?? 1)) {
        job.status.conditions = [condition('SuccessCriteriaMet', 'CompletionsReached', 'Reached expected number of succeeded pods'), condition('Complete', 'CompletionsReached', 'Reached expected number of succeeded pods')];
        job.status.completionTime = now();
        delete job.status.active;
        touch(job);
      }
    },
    /** The Job controller gave up: `reason` is BackoffLimitExceeded, DeadlineExceeded, … */
    failJob(name: string, reason: string, message: string, ns = 'default'): void {
      const job = jobOf(name, ns);
      for (const p of active(job)) p.status.phase = 'Failed';
      recount(job);
      job.status.conditions = [condition('FailureTarget', reason, message), condition('Failed', reason, message)];
      touch(job);
    },
    /** Gone without the executor (by hand, or its TTL ran out). */
    forget(name: string, ns = 'default'): void {
      jobs.delete(key(ns, name));
    },
  };
  return controls;
}

export type FakeKubernetes = Awaited<ReturnType<typeof startFakeKubernetes>>;

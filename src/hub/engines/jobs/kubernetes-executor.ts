import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ApiException, BatchV1Api, CoreV1Api, KubeConfig, type V1Job, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../../shared/logger.js';
import type { Clock } from '../engine.js';
import { CONTAINER, MANAGED_BY, RUN_LABEL, jobManifest, runSelector, type KubernetesSettings } from './job-manifest.js';
import { jobEnd, jobStarted, overdue, stuckPods } from './kubernetes-status.js';
import type { JobExecutor, JobRow, Run, RunUpdate } from './model.js';

export type KubernetesDeps = { clock: Clock; log: Logger };

const KEY = 'engines.jobs.kubernetes';
/** Tries of a Job's creation through transient failures (5xx, 429, the network) before its run fails. */
const CREATE_TRIES = 5;
/** How long stop() waits for a deleted Job's pods to be gone. */
const STOP_WAIT_MS = 300_000;
/** Polls a Job watched before its creation may be missing (the engine may watch as it starts). */
const MISSING_POLLS = 3;
/** Each pod's log is read up to this size: a runaway job's log must not take the hub's memory. */
const POD_LOG_BYTES = 8 * 1024 * 1024;
const PAGE = 500;

/** The Kubernetes configuration the settings name: a kubeconfig file, KUBECONFIG, ~/.kube/config, or the in-cluster service account. */
export function loadKubeConfig(settings: Pick<KubernetesSettings, 'kubeconfig' | 'context'>): KubeConfig {
  const env = process.env;
  const kc = new KubeConfig();
  try {
    if (settings.kubeconfig) {
      if (!existsSync(settings.kubeconfig)) throw new Error(`${KEY}.kubeconfig: no file ${settings.kubeconfig}`);
      kc.loadFromFile(settings.kubeconfig);
    } else if (env.KUBECONFIG || existsSync(join(homedir(), '.kube', 'config'))) {
      kc.loadFromDefault();
    } else if (env.KUBERNETES_SERVICE_HOST) {
      kc.loadFromCluster();
    } else {
      throw new Error(`${KEY}: no Kubernetes configuration: set ${KEY}.kubeconfig or KUBECONFIG, create ~/.kube/config, or run the hub in the cluster`);
    }
  } catch (err) {
    const message = (err as Error).message;
    throw new Error(message.startsWith(KEY) ? message : `${KEY}.kubeconfig: ${message}`, { cause: err });
  }
  if (settings.context) {
    if (!kc.getContextObject(settings.context)) throw new Error(`${KEY}.context: the kubeconfig has no context "${settings.context}" (it has: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`);
    kc.setCurrentContext(settings.context);
  }
  if (!kc.getCurrentCluster()) throw new Error(`${KEY}.kubeconfig: its context "${kc.getCurrentContext()}" names no cluster`);
  return kc;
}

/** What the API answered, as one line: Kubernetes' own Status message where it sent one. */
export function apiFailure(err: unknown): { code?: number; reason?: string; message: string } {
  if (!(err instanceof ApiException)) return { message: (err as Error).message };
  const code = err.code as number;
  if (code === 401) return { code, reason: 'Unauthorized', message: "Unauthorized: the cluster refused the hub's credentials (the kubeconfig's user, or the service account token)" };
  try {
    const status = JSON.parse(String(err.body)) as { reason?: string; message?: string };
    if (status.message) return { code, reason: status.reason, message: status.message };
  } catch {
    // Not a Status (a proxy's HTML page): say the code.
  }
  return { code, message: `HTTP ${code} from the Kubernetes API` };
}

const transient = (f: { code?: number }) => f.code === undefined || f.code === 429 || f.code >= 500;

type Watcher = {
  run: Run;
  onUpdate: (update: RunUpdate) => void;
  seen: boolean;
  missing: number;
  running: boolean;
  stuckSince: Map<string, number>;
};

/**
 * Runs rows as batch/v1 Jobs. Status comes from one list of pushfleet's Jobs (and, while any runs,
 * of their pods) every pollSeconds, shared by all watched runs: each poll reads the current state,
 * so a dropped connection, a 500 or a hub restart loses nothing, it only delays the next look.
 */
export class KubernetesExecutor implements JobExecutor {
  readonly kind = 'kubernetes' as const;
  private readonly watchers = new Set<Watcher>();
  /** Runs being stopped: their Job's disappearance is the stop, not a failure. */
  private readonly stopping = new Set<string>();
  private timer?: unknown;
  private polling = false;

  constructor(
    private readonly settings: KubernetesSettings,
    private readonly batch: BatchV1Api,
    private readonly core: CoreV1Api,
    private readonly deps: KubernetesDeps,
  ) {}

  private get namespace(): string {
    return this.settings.namespace;
  }

  async start(run: Run, row: JobRow): Promise<void> {
    if (row.executor !== 'kubernetes') throw new Error(`row ${row.jobName} is not a kubernetes row`);
    const body = jobManifest(run, row, this.settings);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.batch.createNamespacedJob({ namespace: this.namespace, body });
        this.deps.log.info({ run: run.id, job: run.name, namespace: this.namespace }, 'kubernetes job created');
        return;
      } catch (err) {
        const f = apiFailure(err);
        if (f.code === 409) return this.adopt(run);
        if (f.code === 403) throw new Error(`forbidden: ${f.message}: give the hub's service account create on jobs in ${this.namespace}`);
        if (!transient(f) || attempt >= CREATE_TRIES) throw new Error(`Kubernetes did not create Job ${run.name} in ${this.namespace}: ${f.message}`);
        this.deps.log.warn({ run: run.id, job: run.name, attempt, err: f.message }, 'kubernetes job create failed, trying again');
        await this.sleep(this.settings.pollSeconds * 1000);
      }
    }
  }

  /** A Job already under the run's name is the run's own when it carries the run's label (an earlier start that crashed before it was recorded). */
  private async adopt(run: Run): Promise<void> {
    const existing = await this.batch.readNamespacedJob({ name: run.name, namespace: this.namespace }).catch((err: unknown) => {
      throw new Error(`Job ${run.name} already exists in ${this.namespace} but cannot be read: ${apiFailure(err).message}`);
    });
    const owner = existing.metadata?.labels?.[RUN_LABEL];
    if (existing.metadata?.labels?.[MANAGED_BY] === 'pushfleet' && owner === run.id) {
      this.deps.log.info({ run: run.id, job: run.name }, 'kubernetes job already exists for this run: adopted');
      return;
    }
    throw new Error(`Job ${run.name} already exists in ${this.namespace} and is not this run's (${owner ? `its ${RUN_LABEL} is ${owner}` : `it has no ${RUN_LABEL} label`}): delete it or rename the job`);
  }

  watch(run: Run, onUpdate: (update: RunUpdate) => void): () => void {
    const watcher: Watcher = { run, onUpdate, seen: false, missing: 0, running: false, stuckSince: new Map() };
    this.watchers.add(watcher);
    if (this.timer === undefined && !this.polling) this.schedule(0);
    return () => void this.watchers.delete(watcher);
  }

  private schedule(delayMs: number): void {
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      void this.poll();
    }, delayMs);
  }

  private async poll(): Promise<void> {
    this.polling = true;
    try {
      const jobs = new Map((await this.listAll<V1Job>((c) => this.batch.listNamespacedJob(c))).map((j) => [j.metadata?.name, j]));
      const running = [...this.watchers].some((w) => !this.stopping.has(w.run.id) && jobs.has(w.run.name) && !jobEnd(jobs.get(w.run.name)!));
      const pods = running ? await this.listAll<V1Pod>((c) => this.core.listNamespacedPod(c)) : [];
      const now = this.deps.clock.now();
      for (const w of [...this.watchers]) {
        // A Job of the run's name but another run's label is not this run's (a clash refused at start).
        const job = jobs.get(w.run.name);
        if (this.watchers.has(w) && !this.stopping.has(w.run.id)) this.observe(w, job?.metadata?.labels?.[RUN_LABEL] === w.run.id ? job : undefined, pods, now);
      }
    } catch (err) {
      // The next poll reads the whole state again: nothing is lost, only later.
      const f = apiFailure(err);
      const hint = f.code === 403 ? `: give the hub's service account list on jobs and pods in ${this.namespace}` : '';
      this.deps.log.warn({ namespace: this.namespace, err: f.message + hint }, 'kubernetes status poll failed');
    } finally {
      this.polling = false;
      if (this.watchers.size && this.timer === undefined) this.schedule(this.settings.pollSeconds * 1000);
    }
  }

  /** Every item of a list of pushfleet's objects in the namespace, page by page. */
  private async listAll<T>(list: (q: { namespace: string; labelSelector: string; limit: number; _continue?: string }) => Promise<{ items: T[]; metadata?: { _continue?: string } }>): Promise<T[]> {
    const items: T[] = [];
    let next: string | undefined;
    do {
      const page = await list({ namespace: this.namespace, labelSelector: `${MANAGED_BY}=pushfleet`, limit: PAGE, ...(next && { _continue: next }) });
      items.push(...page.items);
      next = page.metadata?._continue || undefined;
    } while (next);
    return items;
  }

  private observe(w: Watcher, job: V1Job | undefined, pods: V1Pod[], now: number): void {
    if (!job) {
      w.missing++;
      if (w.seen || w.missing >= MISSING_POLLS) {
        this.finish(w, { status: 'failed', at: now, reason: `Job ${w.run.name} is gone from ${this.namespace} before the hub saw it end (deleted by hand, or its ttlSecondsAfterFinished ran out while the hub was away)` });
      }
      return;
    }
    w.seen = true;
    w.missing = 0;
    const startedAt = jobStarted(job);
    if (startedAt !== undefined && !w.running) {
      w.running = true;
      this.emit(w, { status: 'running', at: startedAt });
    }
    const end = jobEnd(job);
    if (end) return this.finish(w, { status: end.status, at: end.at ?? now, reason: end.reason });
    const own = pods.filter((p) => p.metadata?.labels?.[RUN_LABEL] === w.run.id);
    const stuck = overdue(stuckPods(own, this.settings), w.stuckSince, now);
    if (stuck) this.finish(w, { status: 'failed', at: now, reason: stuck });
  }

  private finish(w: Watcher, update: RunUpdate): void {
    this.watchers.delete(w);
    this.emit(w, update);
  }

  private emit(w: Watcher, update: RunUpdate): void {
    try {
      w.onUpdate(update);
    } catch (err) {
      this.deps.log.error({ run: w.run.id, err: (err as Error).message }, 'kubernetes run update handler failed');
    }
  }

  async stop(run: Run): Promise<void> {
    this.stopping.add(run.id);
    try {
      // Foreground: the Job is gone only once its pods are, so a replacement never overlaps it.
      if (await this.delete(run, 'Foreground')) {
        const deadline = this.deps.clock.now() + STOP_WAIT_MS;
        while (await this.exists(run)) {
          if (this.deps.clock.now() > deadline) throw new Error(`Job ${run.name} in ${this.namespace} still exists ${STOP_WAIT_MS / 1000} s after its deletion (a finalizer holds it?)`);
          await this.sleep(Math.min(this.settings.pollSeconds, 1) * 1000);
        }
      }
      // A stopped run ends without an update from here: the engine that stopped it reports it (cancelled, replaced).
      for (const w of this.watchers) if (w.run.id === run.id) this.watchers.delete(w);
    } finally {
      this.stopping.delete(run.id);
    }
  }

  async remove(run: Run): Promise<void> {
    await this.delete(run, 'Background');
  }

  /** Deletes the run's Job; false when there was none. */
  private async delete(run: Run, propagationPolicy: 'Foreground' | 'Background'): Promise<boolean> {
    try {
      await this.batch.deleteNamespacedJob({ name: run.name, namespace: this.namespace, propagationPolicy });
      return true;
    } catch (err) {
      const f = apiFailure(err);
      if (f.code === 404) return false;
      throw new Error(`Kubernetes did not delete Job ${run.name} in ${this.namespace}: ${f.message}`);
    }
  }

  private async exists(run: Run): Promise<boolean> {
    try {
      await this.batch.readNamespacedJob({ name: run.name, namespace: this.namespace });
      return true;
    } catch (err) {
      const f = apiFailure(err);
      if (f.code === 404) return false;
      if (transient(f)) return true;
      throw new Error(`Kubernetes did not say whether Job ${run.name} is gone: ${f.message}`);
    }
  }

  async logs(run: Run): Promise<string> {
    const { items } = await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: runSelector(run) });
    const pods = items.sort((a, b) => (createdAt(a) - createdAt(b)) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
    const parts: string[] = [];
    for (const pod of pods) {
      const name = pod.metadata?.name ?? '?';
      let text: string;
      try {
        text = await this.core.readNamespacedPodLog({ name, namespace: this.namespace, container: CONTAINER, limitBytes: POD_LOG_BYTES });
      } catch (err) {
        text = `(no log: ${apiFailure(err).message})\n`;
      }
      parts.push(`==> pod ${name} (${pod.status?.phase ?? 'Unknown'}) <==\n${text}${text === '' || text.endsWith('\n') ? '' : '\n'}`);
    }
    return parts.join('');
  }

  private sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) => this.deps.clock.setTimeout(resolve, delayMs));
  }
}

const createdAt = (pod: V1Pod): number => (pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : 0);

/** The Kubernetes executor for the settings' cluster and namespace; throws one line naming the key when the configuration cannot be loaded. */
export function createKubernetesExecutor(config: KubernetesSettings, deps: KubernetesDeps): KubernetesExecutor {
  const kc = loadKubeConfig(config);
  return new KubernetesExecutor(config, kc.makeApiClient(BatchV1Api), kc.makeApiClient(CoreV1Api), deps);
}

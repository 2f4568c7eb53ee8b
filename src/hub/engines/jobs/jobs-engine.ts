import { createHash } from 'node:crypto';
import { TopicContract } from '../../../shared/contract/topic-table.js';
import { JOBS_REQUEST, jobCompleteTopic, jobFailedTopic, jobsErrorTopic, jobsRefreshTopic, type JobsErrorEvent } from '../../../shared/contract/jobs-engine-messages.js';
import { topicMatches } from '../../../shared/topic-match.js';
import type { Delivery, Engine, EngineContext } from '../engine.js';
import type { JobsConfig } from './config.js';
import type { JobExecutor, JobRow, LogStore, RowError, Run, RunStatus, RunUpdate, TableSource, TableText } from './model.js';
import { completionOf, newRunId, planTrigger, type TriggerPlan } from './run-plan.js';
import { isFinished, RunStore, type TriggerKey } from './run-store.js';
import { answerJobsRequest, type TableState } from './jobs-requests.js';
import { ownTopicProblem } from './trigger-topics.js';

export type JobsDeps = {
  source: TableSource;
  /**
   * The table's rows, and its bad rows (skipped) with line and reason; cycles are refused there,
   * and so are rows `refuse` names a reason for. Throws when the table cannot be read as a whole.
   */
  parse(table: TableText, refuse: (row: JobRow) => string | undefined): { rows: JobRow[]; errors: RowError[] };
  executors: Partial<Record<JobRow['executor'], JobExecutor>>;
  /** Why an executor kind is not available (no cluster configured): its rows are row errors. */
  unavailable?: Partial<Record<JobRow['executor'], string>>;
  logs: LogStore;
  newId?: () => string;
};

/** Seconds between attempts to publish a completion the broker did not take. */
const PUBLISH_RETRY_MS = 5_000;
/** How long a stop waits for a run's duties under way. */
const STOP_GRACE_MS = 2_000;

/**
 * The jobs engine: a message on a row's `mqtt_topic` starts a run of the row's job on its
 * executor; its end is published on `{prefix}/job_complete/{job}` (and `job_failed/{job}`),
 * which the hub hears back as the trigger of the next rows: jobs chain. Runs are planned by
 * run-plan.ts and kept in run-store.ts; see README.md beside this file.
 */
export class JobsEngine implements Engine {
  readonly name = 'jobs';
  private readonly store: RunStore;
  private readonly contract: TopicContract;
  private readonly own: { refresh: string; error: string };
  private readonly state: TableState;
  private rows: JobRow[] = [];
  private triggerFilters: string[] = [];
  private resubscribe: () => Promise<void> = async () => undefined;
  private readonly unwatch = new Map<string, () => void>();
  private readonly finishing = new Map<string, Promise<void>>();
  private readonly stopping = new Map<string, Promise<void>>();
  private readonly starting = new Map<string, Promise<void>>();
  private loading: Promise<void> = Promise.resolve();
  private timer: unknown;
  private stopped = false;

  constructor(
    private readonly ctx: EngineContext,
    private readonly config: JobsConfig,
    private readonly deps: JobsDeps,
  ) {
    this.store = new RunStore(ctx.db, (id) => ctx.changed?.('jobs', id));
    this.contract = ctx.contract ?? new TopicContract({ jobsPrefix: config.prefix });
    this.own = { refresh: jobsRefreshTopic(config.prefix), error: jobsErrorTopic(config.prefix) };
    this.state = { location: deps.source.location, version: null, error: null, errors: [] };
  }

  get subscriptions(): readonly string[] {
    return [this.own.refresh, JOBS_REQUEST, ...this.executorFilters(), ...this.triggerFilters];
  }

  /** The runs as the REST API reads them: newest first (of one job), and one run. */
  readonly runs = {
    recent: (offset: number, limit: number, job?: string): { items: Run[]; total: number } => ({ items: this.store.recent(limit, job, offset), total: this.store.count(job) }),
    get: (id: string): Run | undefined => {
      const found = this.store.get(id);
      if (!found) return undefined;
      const { duties: _duties, ...run } = found;
      return run;
    },
  };

  onSubscriptionsChange(resubscribe: () => Promise<void>): void {
    this.resubscribe = resubscribe;
  }

  async start(): Promise<void> {
    await this.reload(false);
    // Executors that hear back over MQTT learn what they keep retained (agents, their runs'
    // states) before a run is started or watched again: the dispatcher subscribes only after start.
    const filters = this.executorFilters();
    if (filters.length && this.ctx.readRetained) await this.ctx.readRetained(filters, (topic, payload) => void this.toExecutor(topic, payload));
    const active = this.store.active();
    const unfinished = this.store.unfinished();
    if (active.length || unfinished.length) this.ctx.log.info({ engine: this.name, active: active.map((r) => r.id), ending: unfinished.map((r) => r.id) }, 'jobs: runs picked up again');
    for (const run of active) {
      if (run.status === 'running') this.watch(run);
      else this.resumePending(run);
    }
    for (const run of unfinished) void this.finish(run);
    this.schedule();
  }

  /** The runs kept (active ones and engines.jobs.history) per status, as stored now. */
  runCounts(): Partial<Record<RunStatus, number>> {
    return this.store.statusCounts();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ctx.clock.clearTimeout(this.timer);
    // Runs go on without the hub: the next start watches them again.
    for (const unwatch of this.unwatch.values()) unwatch();
    this.unwatch.clear();
    await this.loading;
    // Duties under way get a moment to finish (logs being saved); what is left is done after the next start.
    let timer: unknown;
    const moment = new Promise<void>((resolve) => (timer = this.ctx.clock.setTimeout(resolve, STOP_GRACE_MS)));
    await Promise.race([Promise.allSettled([...this.finishing.values(), ...this.starting.values()]), moment]);
    this.ctx.clock.clearTimeout(timer);
  }

  handle(topic: string, payload: Buffer, delivery?: Delivery): void | Promise<void> {
    if (topic === this.own.refresh) return this.reload(true);
    if (topic === JOBS_REQUEST) return answerJobsRequest(this.requestsView(), payload);
    if (this.toExecutor(topic, payload)) return;
    const rows = this.rows.filter((r) => topicMatches(r.mqttTopic, topic));
    if (rows.length === 0) return;
    let key: TriggerKey | undefined;
    if (delivery?.messageId !== undefined) {
      key = { messageId: delivery.messageId, digest: createHash('sha256').update(topic).update('\u0000').update(payload).digest('hex') };
      const prior = delivery.dup ? this.store.redelivered(topic, key) : undefined;
      if (prior) {
        this.ctx.log.info({ engine: this.name, topic, run: prior }, 'jobs: trigger redelivered by the broker, already recorded');
        return;
      }
    }
    this.trigger(rows, topic, payload, key);
  }

  /**
   * Plans and records the runs one message makes, in one synchronous step and one transaction,
   * before any executor hears of them: a hub killed after this finds them pending.
   */
  private trigger(rows: readonly JobRow[], topic: string, payload: Buffer, key?: TriggerKey): Run[] {
    const now = this.ctx.clock.now();
    let activeRuns = this.store.activeCount;
    const plans: { plan: TriggerPlan; row: JobRow }[] = [];
    for (const row of rows) {
      const plan = planTrigger(row, { topic, payload }, this.store.activeOf(row.jobName), { maxPayloadBytes: this.config.maxPayloadBytes, maxActiveRuns: this.config.maxActiveRuns, activeRuns }, now, this.uniqueId());
      activeRuns += (plan.run.status === 'pending' ? 1 : 0) - plan.replaced.length;
      plans.push({ plan, row });
    }
    const replaced = plans.flatMap(({ plan }) => plan.replaced.map(({ run, reason }): Run => ({ ...run, status: 'cancelled', reason, endedAt: now })));
    this.store.insert(
      plans.map(({ plan }) => plan.run),
      key,
      replaced,
    );
    for (const run of replaced) {
      this.unwatch.get(run.id)?.();
      this.unwatch.delete(run.id);
      void this.finish(run);
    }
    for (const { plan, row } of plans) {
      const { run } = plan;
      this.ctx.log.info({ engine: this.name, run: run.id, job: run.job, topic, status: run.status, ...(run.reason && { reason: run.reason }) }, 'jobs: triggered');
      if (run.status === 'pending') void this.begin(run, row, plan.replaced.map((r) => this.stopRun(r.run)));
      else void this.finish(run);
    }
    return plans.map(({ plan }) => plan.run);
  }

  private uniqueId(): string {
    const next = this.deps.newId ?? newRunId;
    let id = next();
    while (this.store.has(id)) id = next();
    return id;
  }

  private resumePending(run: Run): void {
    const row = this.rows.find((r) => r.jobName === run.job && r.executor === run.executor);
    if (!row) return this.end(run, { status: 'failed', at: this.ctx.clock.now(), reason: `job ${run.job} is no longer in the table (${this.state.location}); the run was never started` });
    void this.begin(run, row, []);
  }

  /** Starts a recorded run (again, after a restart: executors adopt what they already started). */
  private async begin(run: Run, row: JobRow, after: Promise<void>[]): Promise<void> {
    await Promise.all(after);
    // Replaced (or ended) while it waited for the runs it replaces to stop.
    if (this.stopped || this.store.get(run.id)?.status !== 'pending') return;
    const executor = this.deps.executors[run.executor];
    const started = (async () => {
      if (!executor) throw new Error(this.deps.unavailable?.[run.executor] ?? `no ${run.executor} executor`);
      await executor.start(run, row);
    })();
    // A stop asked for meanwhile waits for the start, so nothing is created after it was stopped.
    this.starting.set(run.id, started.catch(() => undefined));
    try {
      await started;
    } catch (err) {
      const reason = `could not start: ${(err as Error).message}`;
      this.reportError({ v: 1, kind: 'run', job: run.job, reason: `run ${run.id}: ${reason}` });
      return this.end(run, { status: 'failed', at: this.ctx.clock.now(), reason });
    } finally {
      this.starting.delete(run.id);
    }
    // Not if it was replaced while it started: its stop is under way.
    if (!this.stopped && this.store.get(run.id)?.status === 'pending') this.watch(run);
  }

  private watch(run: Run): void {
    const executor = this.deps.executors[run.executor];
    if (!executor) return this.end(run, { status: 'failed', at: this.ctx.clock.now(), reason: this.deps.unavailable?.[run.executor] ?? `no ${run.executor} executor` });
    const unwatch = executor.watch(run, (update) => this.onUpdate(run.id, update));
    // An executor may report the end at once, from within watch.
    if (isFinished(this.store.get(run.id) ?? run)) unwatch();
    else this.unwatch.set(run.id, unwatch);
  }

  private onUpdate(id: string, update: RunUpdate): void {
    const run = this.store.get(id);
    // A late or repeated update, or a run cancelled meanwhile: the record stands.
    if (!run || isFinished(run)) return;
    if (update.status !== 'running') return this.end(run, update);
    if (run.status === 'running' && (update.agent === undefined || run.agent === update.agent)) return;
    this.store.update({ ...run, status: 'running', startedAt: run.startedAt ?? update.at, ...(update.agent && { agent: update.agent }) });
  }

  private end(run: Run, update: Extract<RunUpdate, { reason: string }>): void {
    const ended: Run = { ...run, status: update.status, reason: update.reason, endedAt: update.at };
    this.store.update(ended);
    this.unwatch.get(run.id)?.();
    this.unwatch.delete(run.id);
    void this.finish(ended);
  }

  /** Stops a replaced run once (the new run starts after it). */
  private stopRun(run: Run): Promise<void> {
    let stopping = this.stopping.get(run.id);
    if (!stopping) {
      const executor = this.deps.executors[run.executor];
      const start = this.starting.get(run.id) ?? Promise.resolve();
      stopping = start.then(() => executor?.stop(run)).catch((err: unknown) => this.ctx.log.warn({ engine: this.name, run: run.id, err: (err as Error).message }, 'jobs: could not stop a replaced run'));
      this.stopping.set(run.id, stopping);
      void stopping.finally(() => this.stopping.delete(run.id));
    }
    return stopping;
  }

  /** A finished run's duties, each recorded once done: stop (cancelled), keep its logs, announce it, free it. */
  private finish(run: Run): Promise<void> {
    let finishing = this.finishing.get(run.id);
    if (!finishing) {
      finishing = this.carryOut(run.id).catch((err: unknown) => this.ctx.log.error({ engine: this.name, run: run.id, err }, 'jobs: finishing a run failed'));
      this.finishing.set(run.id, finishing);
      void finishing.finally(() => this.finishing.delete(run.id));
    }
    return finishing;
  }

  private async carryOut(id: string): Promise<void> {
    const run = this.store.get(id);
    if (!run) return;
    const executor = this.deps.executors[run.executor];
    if (!run.duties.logsKept) {
      if (run.status === 'cancelled') await this.stopRun(run);
      try {
        if (!executor) throw new Error(`no ${run.executor} executor`);
        run.logs = await this.deps.logs.put(run, await executor.logs(run));
        this.store.update(run);
      } catch (err) {
        this.reportError({ v: 1, kind: 'run', job: run.job, reason: `run ${run.id}: logs not kept: ${(err as Error).message}` });
      }
      this.store.done(id, 'logsKept');
    }
    if (!run.duties.announced) {
      if (!(await this.announce(run))) return;
      this.store.done(id, 'announced');
    }
    if (!run.duties.removed) {
      await executor?.remove(run).catch((err: unknown) => this.ctx.log.warn({ engine: this.name, run: run.id, err: (err as Error).message }, 'jobs: could not remove a finished run'));
      this.store.done(id, 'removed');
    }
    for (const gone of this.store.prune(this.config.history)) {
      await this.deps.logs.delete(gone).catch((err: unknown) => this.ctx.log.warn({ engine: this.name, run: gone.id, err: (err as Error).message }, 'jobs: could not delete a forgotten run\'s logs'));
    }
  }

  /** Publishes the completion (QoS 1) until the broker takes it; false when the engine stopped first. */
  private async announce(run: Run): Promise<boolean> {
    const completion = JSON.stringify(completionOf(run));
    const topics = [jobCompleteTopic(this.config.prefix, run.job), ...(run.status === 'failed' ? [jobFailedTopic(this.config.prefix, run.job)] : [])];
    for (;;) {
      if (this.stopped) return false;
      try {
        for (const topic of topics) await this.ctx.publisher.publish(topic, completion, { qos: 1 });
        this.ctx.log.info({ engine: this.name, run: run.id, job: run.job, status: run.status, reason: run.reason }, 'jobs: run ended');
        return true;
      } catch (err) {
        this.ctx.log.warn({ engine: this.name, run: run.id, err: (err as Error).message }, 'jobs: completion not published; retrying');
        await new Promise<void>((resolve) => this.ctx.clock.setTimeout(resolve, PUBLISH_RETRY_MS));
      }
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.ctx.clock.setTimeout(() => {
      void this.reload(false).finally(() => this.schedule());
    }, this.config.reloadSeconds * 1000);
  }

  /** Reads the table (again; `force`: even when its version did not change), one load at a time. */
  private reload(force: boolean): Promise<void> {
    this.loading = this.loading.then(() => this.load(force));
    return this.loading;
  }

  private async load(force: boolean): Promise<void> {
    if (this.stopped) return;
    let parsed: { rows: JobRow[]; errors: RowError[]; version: string } | 'unchanged';
    try {
      const text = await this.deps.source.read(force ? undefined : (this.state.version ?? undefined));
      parsed = text === 'unchanged' ? text : { ...this.deps.parse(text, (row) => this.rowProblem(row)), version: text.version };
    } catch (err) {
      const reason = `cannot read the jobs table ${this.deps.source.location}: ${(err as Error).message}`;
      // Said once per distinct failure; the rows loaded before keep working.
      if (reason !== this.state.error) this.reportError({ v: 1, kind: 'table', reason });
      this.state.error = reason;
      return;
    }
    this.state.error = null;
    if (parsed === 'unchanged') return;
    const { rows, errors, version } = parsed;
    this.rows = rows;
    this.state.version = version;
    this.state.errors = errors;
    for (const e of errors) this.reportError({ v: 1, kind: 'row', line: e.line, ...(e.jobName && { job: e.jobName }), reason: e.reason });
    this.triggerFilters = [...new Set(rows.map((r) => r.mqttTopic))];
    this.contract.setJobTriggers(this.triggerFilters, this.config.triggerRoles);
    this.ctx.log.info({ engine: this.name, table: this.deps.source.location, version, rows: rows.length, errors: errors.length }, 'jobs: table loaded');
    await this.resubscribe();
  }

  /** What the engine itself refuses of a row the table accepted. */
  private rowProblem(row: JobRow): string | undefined {
    const own = ownTopicProblem(this.contract, this.config.prefix, row.mqttTopic);
    if (own) return own;
    if (!this.deps.executors[row.executor]) return `executor ${row.executor} is not available: ${this.deps.unavailable?.[row.executor] ?? 'not configured'}`;
    return undefined;
  }

  private reportError(event: JobsErrorEvent): void {
    this.ctx.log.warn({ engine: this.name, ...event }, `jobs: ${event.kind} error`);
    this.ctx.publisher.publish(this.own.error, JSON.stringify(event), { qos: 1 }).catch((err: unknown) => this.ctx.log.warn({ engine: this.name, err: (err as Error).message }, 'jobs: error event not published'));
  }

  /** Passes a message on an executor's filters to it; false when it is on none. */
  private toExecutor(topic: string, payload: Buffer): boolean {
    for (const executor of Object.values(this.deps.executors)) {
      if (!executor.subscriptions?.some((f) => topicMatches(f, topic))) continue;
      executor.handle?.(topic, payload);
      return true;
    }
    return false;
  }

  private executorFilters(): string[] {
    return Object.values(this.deps.executors).flatMap((e) => [...(e.subscriptions ?? [])]);
  }

  private requestsView() {
    return {
      ctx: this.ctx,
      state: this.state,
      rows: this.rows,
      store: this.store,
      logs: this.deps.logs,
      executors: this.deps.executors,
      trigger: (row: JobRow, payload: Buffer) => this.trigger([row], '', payload)[0]!,
    };
  }
}

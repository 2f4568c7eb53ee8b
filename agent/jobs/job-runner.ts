import { SCHEMA_VERSION } from '../../src/shared/messages.js';
import type { AgentJobsOffer } from '../../src/shared/messages.js';
import { OUTPUT_TAIL_CHARS, type AgentJobStatus, type JobStart } from '../../src/shared/contract/jobs-messages.js';
import type { Logger } from '../../src/shared/logger.js';
import type { ActionsConfig } from '../action-config.js';
import type { ProcessExit, ProcessOptions, RunningProcess, Track } from '../run-command.js';
import type { AgentJobsConfig } from './jobs-config.js';
import type { RunRecord, RunRecords } from './run-records.js';
import { planStart } from './start-check.js';

export type JobRunnerDeps = {
  actions: ActionsConfig;
  jobs: AgentJobsConfig;
  records: RunRecords;
  /** Starts the argv once `track` recorded it (run-command.ts launch, with the agent's environment). */
  launch(argv: readonly string[], opts: ProcessOptions, track: Track): Promise<RunningProcess>;
  /** Records what a just-started process group is (process-group.ts describeGroup). */
  describeGroup(pid: number, argv0: string): NonNullable<RunRecord['group']>;
  /** Stops what a run of a killed agent left running; says what was done, or null. */
  stopLeftover(group: NonNullable<RunRecord['group']>): Promise<string | null>;
  /** Publishes a run's status, retained; resolves once the broker has it. */
  publish(run: string, status: AgentJobStatus): Promise<void>;
  /** The number of runs under way changed (the agent republishes its status). */
  changed(): void;
  now(): number;
  log: Logger;
};

/** `stopped`: why it was told to stop, once it was. */
type Running = { proc: RunningProcess | null; stopped: string | null };

/**
 * Runs the hub's job starts on this agent: only offered actions from the agent's own config,
 * at most `jobs.maxConcurrent` at once, each recorded before its process runs, so a redelivered
 * start is never run twice and a restart reports the runs it cut short.
 */
export class JobRunner {
  private readonly running = new Map<string, Running>();

  constructor(private readonly deps: JobRunnerDeps) {}

  offer(): AgentJobsOffer {
    return { actions: this.deps.jobs.actions, maxConcurrent: this.deps.jobs.maxConcurrent, running: this.running.size };
  }

  /**
   * Runs left in `running` by an agent that died: their process groups are stopped and they end
   * failed. Records whose end was not acknowledged by the broker are published again.
   */
  async recover(): Promise<void> {
    for (const record of this.deps.records.all((file, err) => this.deps.log.error({ file, err: err.message }, 'damaged job run record left alone'))) {
      if (record.status.state === 'running') {
        const leftover = record.group ? await this.deps.stopLeftover(record.group).catch((err: Error) => err.message) : null;
        const reason = `agent restarted while the job ran${leftover ? `; ${leftover}` : ''}`;
        this.deps.log.warn({ run: record.run, reason }, 'job run cut short by an agent restart');
        this.finish(record.run, { ...record.status, state: 'failed', at: this.iso(), reason });
      } else if (!record.published) this.report(record);
    }
  }

  start(start: JobStart): void {
    const { run } = start;
    const log = this.deps.log.child({ run, job: start.job, action: start.action });
    const known = this.running.has(run) ? undefined : this.deps.records.get(run);
    if (this.running.has(run) || known) {
      log.info('job start seen before: not run again');
      if (known) this.report(known);
      return;
    }
    const plan = planStart(start, this.deps.actions, this.deps.jobs.actions);
    if ('refused' in plan) return this.refuse(run, plan.refused, log);
    if (this.running.size >= this.deps.jobs.maxConcurrent) return this.refuse(run, `busy: ${this.running.size} of jobs.maxConcurrent ${this.deps.jobs.maxConcurrent} runs under way`, log);
    const entry: Running = { proc: null, stopped: null };
    this.running.set(run, entry);
    this.deps.changed();
    const timeoutMs = plan.timeoutSeconds * 1000;
    const status = (state: AgentJobStatus['state'], extra: Partial<AgentJobStatus> = {}): AgentJobStatus => ({ v: SCHEMA_VERSION, run, state, at: this.iso(), ...extra });
    const track: Track = async (pid, argv0) => {
      this.deps.records.put({ v: 1, run, status: status('running'), group: this.deps.describeGroup(pid, argv0), published: false });
    };
    const opts: ProcessOptions = {
      cwd: plan.action.cwd,
      env: plan.env,
      timeoutMs,
      killGraceMs: plan.action.stopTimeout * 1000,
      tailChars: OUTPUT_TAIL_CHARS,
      onLine: (stream, line) => log.debug({ stream }, line),
    };
    this.deps
      .launch(plan.action.command, opts, track)
      .then(async (proc) => {
        entry.proc = proc;
        if (entry.stopped) proc.terminate(); // a stop came while it was being recorded
        if (proc.pid !== undefined) {
          log.info({ pid: proc.pid, timeoutSeconds: plan.timeoutSeconds }, 'job run started');
          this.report({ v: 1, run, status: status('running'), group: null, published: false });
        }
        const exit = await proc.exited;
        this.running.delete(run);
        const end = this.ending(exit, entry.stopped, plan.timeoutSeconds, plan.action.command[0]!);
        log.info({ state: end.state, reason: end.reason }, 'job run ended');
        this.finish(run, status(end.state, end));
        this.deps.changed();
      })
      .catch((err: unknown) => {
        // The record could not be written (a full disk): the process was killed at its gate, unrun.
        this.running.delete(run);
        this.deps.changed();
        log.error({ err: (err as Error).message }, 'job run not started');
        void this.deps.publish(run, status('failed', { reason: `not started: cannot record the run: ${(err as Error).message}`.slice(0, 4096) })).catch(() => undefined);
      });
  }

  /** Stops a run under way; a run not seen yet is recorded as stopped, so a late start does not run it. */
  stop(run: string): void {
    const entry = this.running.get(run);
    if (entry) {
      this.deps.log.info({ run }, 'stopping job run');
      entry.stopped = 'stopped';
      entry.proc?.terminate();
      return;
    }
    const known = this.deps.records.get(run);
    if (known) return this.report(known);
    this.refuse(run, 'stopped before it started', this.deps.log.child({ run }));
  }

  /** A start the hub signed but that does not decode: failed with why, unless the run is known already. */
  malformed(run: string, reason: string): void {
    if (!this.running.has(run) && !this.deps.records.get(run)) this.refuse(run, reason, this.deps.log.child({ run }));
  }

  /** Stops every run under way (the agent is stopping); each ends failed, saying so. */
  async stopAll(): Promise<void> {
    const ends = [...this.running.values()].map((entry) => {
      entry.stopped = 'stopped: the agent is stopping';
      entry.proc?.terminate();
      return entry.proc?.exited;
    });
    await Promise.all(ends);
  }

  private ending(exit: ProcessExit, stopped: string | null, timeoutSeconds: number, argv0: string): Pick<AgentJobStatus, 'state' | 'exitCode' | 'signal' | 'reason' | 'output'> {
    const facts = { ...(exit.code !== null && { exitCode: exit.code }), ...(exit.signal && { signal: exit.signal }), output: exit.tail };
    if (exit.error) return { state: 'failed', reason: `cannot run ${argv0}: ${exit.error.message}`, output: exit.tail };
    if (stopped) return { state: 'failed', reason: stopped, ...facts };
    if (exit.timedOut) return { state: 'failed', reason: `timed out after ${timeoutSeconds} s`, ...facts };
    if (exit.code === 0) return { state: 'succeeded', ...facts };
    return { state: 'failed', reason: exit.signal ? `killed by ${exit.signal}` : `exited with status ${exit.code}`, ...facts };
  }

  private refuse(run: string, reason: string, log: Logger): void {
    log.warn({ reason }, 'job start refused');
    this.finish(run, { v: SCHEMA_VERSION, run, state: 'failed', at: this.iso(), reason });
  }

  /** Records a run's end, then reports it; when it cannot be recorded it is still reported. */
  private finish(run: string, status: AgentJobStatus): void {
    // Within what the broker's check of the topic takes (AgentJobStatus), whatever an error said.
    if (status.reason !== undefined) status = { ...status, reason: status.reason.slice(0, 4096) };
    const record: RunRecord = { v: 1, run, status, group: null, published: false };
    try {
      this.deps.records.put(record);
    } catch (err) {
      this.deps.log.error({ run, err: (err as Error).message }, 'job run end not recorded');
    }
    this.report(record);
  }

  /** Publishes a record's status; once the broker has it, marks the record published. */
  private report(record: RunRecord): void {
    this.deps
      .publish(record.run, record.status)
      .then(() => {
        if (record.status.state !== 'running' && !record.published) this.deps.records.put({ ...record, published: true });
      })
      .catch((err: unknown) => this.deps.log.warn({ run: record.run, err: (err as Error).message }, 'job status not published'));
  }

  private iso(): string {
    return new Date(this.deps.now()).toISOString();
  }
}

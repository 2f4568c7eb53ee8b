import type { Logger } from '../../src/shared/logger.js';
import { SCHEMA_VERSION } from '../../src/shared/messages.js';
import { type NodeCommand, type NodeReport, type NodeResult } from '../../src/shared/contract/orchestrator-messages.js';
import { describeExit, type ProcessExit, type RunningProcess } from '../run-command.js';
import type { ActionLauncher } from './action-launcher.js';
import { resolveAction, splitWords, type ResolvedAction } from './command-words.js';
import type { NodeAction } from './node-config.js';

type StartCommand = Extract<NodeCommand, { kind: 'start' }>;
type Resolved = Extract<ResolvedAction, { ok: true }>;

/** The run id of actions started by seed (plain-word) commands. */
export const SEED_RUN = 'seed';
/**
 * A "start at T" that arrives later than this after T is refused: the other nodes started long
 * ago (a command held back by a broken connection, say), so starting now would measure nothing.
 */
export const LATE_LIMIT_MS = 1000;

export type ExecutorDeps = {
  actions: Readonly<Record<string, NodeAction>>;
  queueSize: number;
  /** Agent id (native results) and seed node name (seed results). */
  agent: string;
  seedNode: string;
  /** Starts the action's process now, or (startAt) now but released at a local instant: see action-launcher.ts. */
  launch: Pick<ActionLauncher, 'start' | 'startAt'>;
  /** A plain-word seed status (retained). */
  status(word: string): void;
  result(result: NodeResult): void;
/** This agent's clock and its measured offset to the hub's (null before the first measurement). */
  clock: { now(): number; offsetMs(): number | null; errorMs(): number | null };
  log: Logger;
};

type Slot = {
  runId: string;
  stepId: string;
  resolved: Resolved;
  report: NodeReport;
  proc: RunningProcess | null;
  durationTimer: NodeJS.Timeout | undefined;
  stoppedBy: 'duration' | 'stop' | null;
  done: Promise<void>;
  settle(): void;
};

/**
 * One node runs one action at a time, so STOP always means "the" action, as in the seed.
 * Seed commands that arrive while it is busy wait in a bounded queue (status QUEUED) or are refused
 * (BUSY); a native "start at T" cannot wait, so it is answered `busy`. STOP and TERMINATE are built
 * in: both stop the running action; TERMINATE also drops the queue. The agent keeps running after
 * TERMINATE (it is a service), ready for the next playbook.
 *
 * Statuses: STARTED when the process was spawned; DONE or FAILED when it ended by itself; STOPPED
 * after a STOP or its duration; TERMINATED; QUEUED, BUSY, REFUSED for seed commands.
 */
export class NodeExecutor {
  private slot: Slot | null = null;
  private readonly queue: Resolved[] = [];

  constructor(private readonly deps: ExecutorDeps) {}

  seedCommand(message: string): void {
    const [name, ...args] = splitWords(message);
    if (name === 'STOP') return void this.stopThen('STOPPED');
    if (name === 'TERMINATE') {
      this.queue.length = 0;
      return void this.stopThen('TERMINATED');
    }
    const resolved = resolveAction(this.deps.actions, name ?? '', args);
    if (!resolved.ok) {
      this.deps.log.warn({ command: message.slice(0, 200), reason: resolved.reason }, 'refused command');
      return this.deps.status('REFUSED');
    }
    if (this.slot || this.queue.length) {
      const full = this.queue.length >= this.deps.queueSize;
      this.deps.log.info({ action: resolved.action, queued: !full, queue: this.queue.length }, 'node busy');
      if (!full) this.queue.push(resolved);
      return this.deps.status(full ? 'BUSY' : 'QUEUED');
    }
    this.startNow(this.occupy(SEED_RUN, resolved.action, resolved));
  }

  /**
   * "Start at T": the process is created now, held at its gate, and released at T on this
   * agent's clock (hub time minus the measured offset), so a slow fork cannot make it late.
   */
  nativeStart(cmd: StartCommand, receivedAt: number): void {
    const resolved = resolveAction(this.deps.actions, cmd.action, cmd.args);
    const refuse = (outcome: 'refused' | 'busy' | 'failed', error: string) => {
      const report = { ...this.blank(this.deps.agent), outcome, error };
      this.deps.result({ v: SCHEMA_VERSION, runId: cmd.runId, stepId: cmd.stepId, phase: 'finished', ...report });
    };
    if (!resolved.ok) return refuse('refused', resolved.reason);
    const late = receivedAt + (this.deps.clock.offsetMs() ?? 0) - cmd.startAt;
    if (late > LATE_LIMIT_MS) return refuse('failed', `the command arrived ${Math.round(late)} ms after its start instant`);
    if (this.slot || this.queue.length) return refuse('busy', `busy with ${this.slot?.resolved.action ?? 'queued commands'}`);
    const slot = this.occupy(cmd.runId, cmd.stepId, resolved);
    slot.report.leadMs = cmd.startAt - this.toHub(slot, receivedAt);
    // One offset per action (taken when it was received): a re-measurement before T moves nothing.
    const localAt = cmd.startAt - (slot.report.clockOffsetMs ?? 0);
    this.spawn(slot, () => this.deps.launch.startAt(resolved, localAt, (t) => this.started(slot, t, cmd.startAt, cmd.durationMs)));
  }

  /** The hub stops a run's action (cancel, failed step, timeout). */
  nativeStop(runId: string, stepId: string | null): void {
    const slot = this.slot;
    if (slot && slot.runId === runId && (stepId === null || slot.stepId === stepId)) void this.stopThen('STOPPED');
  }

  /** Agent shutdown: drop the queue and stop what runs. */
  async stopAll(): Promise<void> {
    this.queue.length = 0;
    if (this.slot) await this.stop(this.slot);
  }

  private occupy(runId: string, stepId: string, resolved: Resolved): Slot {
    let settle = () => {};
    const done = new Promise<void>((r) => (settle = r));
    const node = runId === SEED_RUN ? this.deps.seedNode : this.deps.agent;
    const slot: Slot = { runId, stepId, resolved, report: this.blank(node), proc: null, durationTimer: undefined, stoppedBy: null, done, settle };
    this.slot = slot;
    return slot;
  }

  private startNow(slot: Slot): void {
    if (this.spawn(slot, () => this.deps.launch.start(slot.resolved))) this.started(slot, this.deps.clock.now(), null, null);
  }

  /** Creates the slot's process and follows its exit; false if it could not even be created. */
  private spawn(slot: Slot, create: () => RunningProcess): boolean {
    try {
      slot.proc = create();
    } catch (err) {
      this.finish(slot, { code: null, signal: null, timedOut: false, tail: '', error: err as Error });
      return false;
    }
    void slot.proc.exited.then((exit) => this.finish(slot, exit));
    return true;
  }

  private started(slot: Slot, t: number, startAt: number | null, durationMs: number | null): void {
    const hubT = this.toHub(slot, t);
    Object.assign(slot.report, { startedAt: hubT, lateByMs: startAt === null ? null : hubT - startAt });
    this.deps.status('STARTED');
    this.emit(slot, 'started');
    if (durationMs !== null) {
      // From its start: a timed gate tells the agent a few ms after it went.
      slot.durationTimer = setTimeout(
        () => {
          slot.stoppedBy ??= 'duration';
          slot.proc?.terminate();
        },
        Math.max(0, durationMs - (this.deps.clock.now() - t)),
      );
    }
  }

  private finish(slot: Slot, exit: ProcessExit): void {
    clearTimeout(slot.durationTimer);
    const outcome = exit.error ? 'failed' : slot.stoppedBy === 'duration' ? 'ok' : slot.stoppedBy === 'stop' ? 'stopped' : exit.code === 0 ? 'ok' : 'failed';
    const error = outcome === 'failed' ? describeExit(slot.resolved.argv, exit) : null;
    Object.assign(slot.report, { outcome, error, exitCode: exit.code, signal: exit.signal, stoppedBy: slot.stoppedBy, outputTail: exit.tail, endedAt: this.toHub(slot, this.deps.clock.now()) });
    this.emit(slot, 'finished');
    this.deps.log.info({ action: slot.resolved.action, runId: slot.runId, outcome, exitCode: exit.code, signal: exit.signal }, 'action ended');
    this.slot = null;
    // After a STOP, the stopper publishes STOPPED and then starts what is queued, in that order.
    if (slot.stoppedBy !== 'stop') {
      this.deps.status(outcome === 'ok' ? (slot.stoppedBy === 'duration' ? 'STOPPED' : 'DONE') : 'FAILED');
      this.drain();
    }
    slot.settle();
  }

  private async stop(slot: Slot): Promise<void> {
    slot.stoppedBy = 'stop';
    slot.proc?.terminate(); // before its start instant: it never runs
    await slot.done;
  }

  private async stopThen(word: string): Promise<void> {
    if (this.slot) await this.stop(this.slot);
    this.deps.status(word);
    this.drain();
  }

  private drain(): void {
    const next = this.slot ? undefined : this.queue.shift();
    if (next) this.startNow(this.occupy(SEED_RUN, next.action, next));
  }

  private emit(slot: Slot, phase: 'started' | 'finished'): void {
    this.deps.result({ v: SCHEMA_VERSION, runId: slot.runId, stepId: slot.stepId, phase, ...slot.report });
  }

  private toHub(slot: Slot, local: number): number {
    return local + (slot.report.clockOffsetMs ?? 0);
  }

  private blank(node: string): NodeReport {
    return { node, outcome: null, startedAt: null, endedAt: null, lateByMs: null, leadMs: null, exitCode: null, signal: null, stoppedBy: null, clockErrorMs: this.deps.clock.errorMs(), clockOffsetMs: this.deps.clock.offsetMs(), outputTail: '', error: null };
  }
}

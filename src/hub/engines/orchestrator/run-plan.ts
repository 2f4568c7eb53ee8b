import type { NodeOutcome, NodeReport, StepReport, StepStatus } from '../../../shared/contract/orchestrator-messages.js';
import type { PlanStep } from './native-playbook.js';

/** Outcomes that fail a step; `stopped` (cancelled by the run) does not count as the step's fault. */
const FAILING: ReadonlySet<NodeOutcome> = new Set(['failed', 'refused', 'busy', 'lost', 'timeout']);
const FINISHED: ReadonlySet<StepStatus> = new Set(['ok', 'failed', 'skipped', 'cancelled']);

type StepState = { step: PlanStep; status: StepStatus; startAt: number | null; nodes: Map<string, NodeReport>; error: string | null };

/**
 * A change to a step: `finished` once every node has reported; `stopRun` asks the caller to stop
 * every running action (the run stops at a step's first failing node, not at its last).
 */
export type StepDone = { stepId: string; status: StepStatus; finished: boolean; stopRun: boolean };

export const emptyNodeReport = (node: string): NodeReport => ({
  node,
  outcome: null,
  startedAt: null,
  endedAt: null,
  lateByMs: null,
  leadMs: null,
  exitCode: null,
  signal: null,
  stoppedBy: null,
  clockErrorMs: null,
  clockOffsetMs: null,
  outputTail: '',
  error: null,
});

/**
 * The scheduling of one native run, without I/O or time: which steps may start, how node results
 * finish a step, and what a failure, a lost node, a timeout or a cancel does to the rest. The
 * engine feeds it events and acts on its answers.
 *
 * A step is ready when every dependency has finished (whatever its outcome: `onFailure: continue`
 * means the run carries on). A step fails when any node failed, was refused, busy, lost or timed
 * out; with `onFailure: stop` the run stops as soon as the first node fails: pending steps are
 * skipped and running actions stopped (the step still finishes when every node has reported).
 * The run is `cancelled` after a cancel, else `failed` if any step failed, else `ok`.
 */
export class RunPlan {
  private readonly states = new Map<string, StepState>();
  private stopping: 'failed' | 'cancelled' | null = null;

  constructor(steps: readonly PlanStep[]) {
    for (const step of steps) this.states.set(step.id, { step, status: 'pending', startAt: null, nodes: new Map(), error: null });
  }

  /** Completes the barriers that are due and returns the action steps to start now (marked running). */
  advance(): PlanStep[] {
    const ready: PlanStep[] = [];
    for (let changed = true; changed && !this.stopping; ) {
      changed = false;
      for (const s of this.states.values()) {
        if (s.status !== 'pending' || !s.step.deps.every((d) => FINISHED.has(this.states.get(d)!.status))) continue;
        s.status = s.step.kind === 'barrier' ? 'ok' : 'running';
        if (s.step.kind === 'barrier') changed = true;
        else ready.push(s.step);
      }
    }
    return ready;
  }

  /** The step was sent to these nodes, to start at `startAt`. */
  begin(stepId: string, nodes: readonly string[], startAt: number): void {
    const s = this.running(stepId);
    if (!s) return;
    s.startAt = startAt;
    for (const node of nodes) s.nodes.set(node, emptyNodeReport(node));
  }

  /** The step could not be sent at all (no node matched its targets). */
  failStep(stepId: string, error: string): StepDone | null {
    const s = this.running(stepId);
    if (!s) return null;
    s.error = error;
    return this.complete(s);
  }

  /** A node's report; one with an outcome finishes that node's part. Returns the step if it finished. */
  report(stepId: string, report: NodeReport): StepDone | null {
    const s = this.running(stepId);
    const current = s?.nodes.get(report.node);
    if (!s || !current || current.outcome !== null) return null;
    s.nodes.set(report.node, { ...report, clockErrorMs: report.clockErrorMs ?? current.clockErrorMs, clockOffsetMs: report.clockOffsetMs ?? current.clockOffsetMs });
    if ([...s.nodes.values()].some((n) => n.outcome === null)) {
      const stopRun = report.outcome !== null && FAILING.has(report.outcome) && this.stopFor(s);
      return stopRun ? { stepId, status: s.status, finished: false, stopRun } : null;
    }
    return this.complete(s);
  }

  /** The agent went offline: every unfinished part it had fails as `lost`. */
  nodeLost(node: string): StepDone[] {
    return this.finishUnreported((n) => n === node, 'lost', 'the agent went offline');
  }

  /** The step's timeout passed: its unreported nodes fail as `timeout`. */
  timeout(stepId: string): StepDone[] {
    return this.finishUnreported((_, id) => id === stepId, 'timeout', 'no result within the step timeout');
  }

  /** After a cancel's grace period: whatever still has not reported. */
  abandon(): StepDone[] {
    return this.finishUnreported(() => true, 'timeout', 'no result after being stopped');
  }

  cancel(): void {
    this.stop('cancelled');
  }

  /** Nodes still running something, per step: what a stop must reach. */
  unfinished(): { stepId: string; node: string }[] {
    const out: { stepId: string; node: string }[] = [];
    for (const s of this.states.values()) {
      if (s.status !== 'running') continue;
      for (const n of s.nodes.values()) if (n.outcome === null) out.push({ stepId: s.step.id, node: n.node });
    }
    return out;
  }

  stepNodes(stepId: string): string[] {
    return [...(this.states.get(stepId)?.nodes.keys() ?? [])];
  }

  get finished(): boolean {
    return [...this.states.values()].every((s) => FINISHED.has(s.status));
  }

  get status(): 'ok' | 'failed' | 'cancelled' {
    if (this.stopping === 'cancelled') return 'cancelled';
    return [...this.states.values()].some((s) => s.status === 'failed') ? 'failed' : 'ok';
  }

  steps(): StepReport[] {
    return [...this.states.values()].map((s) => {
      const starts = [...s.nodes.values()].flatMap((n) => (n.startedAt === null ? [] : [n.startedAt]));
      return {
        id: s.step.id,
        kind: s.step.kind,
        action: s.step.action,
        args: s.step.args,
        status: s.status,
        startAt: s.startAt,
        skewMs: starts.length ? Math.max(...starts) - Math.min(...starts) : null,
        nodes: [...s.nodes.values()],
        error: s.error,
      };
    });
  }

  private running(stepId: string): StepState | undefined {
    const s = this.states.get(stepId);
    return s?.status === 'running' ? s : undefined;
  }

  private finishUnreported(pick: (node: string, stepId: string) => boolean, outcome: NodeOutcome, error: string): StepDone[] {
    const done: StepDone[] = [];
    for (const { stepId, node } of this.unfinished()) {
      if (!pick(node, stepId)) continue;
      const current = this.states.get(stepId)!.nodes.get(node)!;
      const d = this.report(stepId, { ...current, outcome, error });
      if (d) done.push(d);
    }
    return done;
  }

  private complete(s: StepState): StepDone {
    const outcomes = [...s.nodes.values()].map((n) => n.outcome);
    const failed = s.error !== null || outcomes.some((o) => o !== null && FAILING.has(o));
    s.status = failed ? 'failed' : outcomes.includes('stopped') ? 'cancelled' : 'ok';
    return { stepId: s.step.id, status: s.status, finished: true, stopRun: failed && this.stopFor(s) };
  }

  /** A failure in step s: stops the run if the step says so and nothing stopped it yet. */
  private stopFor(s: StepState): boolean {
    if (s.step.onFailure !== 'stop' || this.stopping !== null) return false;
    this.stop('failed');
    return true;
  }

  private stop(why: 'failed' | 'cancelled'): void {
    if (this.stopping !== 'cancelled') this.stopping = why;
    for (const s of this.states.values()) if (s.status === 'pending') s.status = 'skipped';
  }
}

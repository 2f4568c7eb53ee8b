import { SCHEMA_VERSION } from '../../../shared/messages.js';
import { type NodeCommand, type NodeResult, type RunEvent } from '../../../shared/contract/orchestrator-messages.js';
import { nodeCommandTopic, runEventsTopic } from '../../../shared/topics.js';
import type { Clock } from '../engine.js';
import type { Fleet } from './fleet.js';
import type { NativePlaybook, PlanStep } from './native-playbook.js';
import { RunPlan, type StepDone } from './run-plan.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export type SessionDeps = {
  /** Fire-and-forget JSON publish (QoS 1); failures are the caller's to log. */
  publish(topic: string, message: object): void;
  clock: Clock;
  /** Sub-millisecond wall clock, the reference every agent's offset is measured against. */
  now(): number;
  fleet: Fleet;
  startMarginMs: number;
  cancelGraceMs: number;
  onFinished(runId: string): void;
};

/**
 * One native run on the hub: the MQTT side of a RunPlan. It resolves each ready step's targets,
 * sends every node "start at T" (T = now + margin, so all have the command before T), arms the
 * step's timeout, turns node results into progress events and ends with the report.
 */
export class RunSession {
  private readonly plan: RunPlan;
  private readonly timers = new Map<string, unknown>();
  private graceTimer: unknown = null;
  private readonly startedAt: number;
  private ended = false;

  constructor(
    private readonly deps: SessionDeps,
    readonly runId: string,
    private readonly playbook: NativePlaybook,
  ) {
    this.plan = new RunPlan(playbook.steps);
    this.startedAt = deps.now();
  }

  start(): void {
    this.emit({ type: 'accepted', steps: this.playbook.steps.map((s) => s.id) });
    this.pump();
  }

  onResult(result: NodeResult): void {
    const { v: _v, runId: _r, stepId, phase, ...report } = result;
    if (!this.plan.stepNodes(stepId).includes(report.node)) return;
    this.emit({ type: 'node', stepId, phase, report });
    this.settle(this.plan.report(stepId, report));
  }

  nodeLost(node: string): void {
    this.settle(this.plan.nodeLost(node));
  }

  /** Ctrl-C: stop every running action, wait for their results (bounded), then report. */
  cancel(): void {
    if (this.ended || this.graceTimer !== null) return;
    this.plan.cancel();
    this.stopRunning();
    this.graceTimer = this.deps.clock.setTimeout(() => this.settle(this.plan.abandon()), this.deps.cancelGraceMs);
    this.pump();
  }

  /** The hub is stopping: stop the nodes and report at once. */
  shutdown(): void {
    if (this.ended) return;
    this.plan.cancel();
    this.stopRunning();
    this.settle(this.plan.abandon());
  }

  private pump(): void {
    for (let ready = this.plan.advance(); ready.length; ready = this.plan.advance()) for (const step of ready) this.launch(step);
    this.finishIfDone();
  }

  private launch(step: PlanStep): void {
    const { nodes, errors } = this.deps.fleet.resolve(step.targets, step.action!);
    if (errors.length) return this.settle(this.plan.failStep(step.id, errors.join('; ')));
    const now = this.deps.now();
    const startAt = now + (this.playbook.startMarginMs ?? this.deps.startMarginMs);
    this.plan.begin(step.id, nodes, startAt);
    this.emit({ type: 'step', stepId: step.id, status: 'running', nodes, startAt, error: null });
    for (const node of nodes) {
      const command: NodeCommand = {
        v: SCHEMA_VERSION,
        kind: 'start',
        runId: this.runId,
        stepId: step.id,
        action: step.action!,
        args: step.args,
        startAt,
        durationMs: step.durationMs,
        sentAt: this.deps.now(),
      };
      this.deps.publish(nodeCommandTopic(node), command);
    }
    const timer = this.deps.clock.setTimeout(() => {
      // A node that never reported may still be running the action: stop it before giving up.
      this.stopRunning(step.id);
      this.settle(this.plan.timeout(step.id));
    }, startAt - now + step.timeoutMs);
    this.timers.set(step.id, timer);
  }

  private settle(done: StepDone | StepDone[] | null): void {
    for (const d of [done ?? []].flat()) {
      if (d.finished) {
        this.deps.clock.clearTimeout(this.timers.get(d.stepId));
        this.timers.delete(d.stepId);
        const report = this.plan.steps().find((s) => s.id === d.stepId)!;
        this.emit({ type: 'step', stepId: d.stepId, status: d.status, nodes: report.nodes.map((n) => n.node), startAt: report.startAt, error: report.error });
      }
      if (d.stopRun) this.stopRunning();
    }
    this.pump();
  }

  private stopRunning(onlyStep?: string): void {
    for (const { stepId, node } of this.plan.unfinished()) {
      if (onlyStep !== undefined && stepId !== onlyStep) continue;
      const stop: NodeCommand = { v: SCHEMA_VERSION, kind: 'stop', runId: this.runId, stepId };
      this.deps.publish(nodeCommandTopic(node), stop);
    }
  }

  private finishIfDone(): void {
    if (this.ended || !this.plan.finished) return;
    this.ended = true;
    for (const t of this.timers.values()) this.deps.clock.clearTimeout(t);
    if (this.graceTimer !== null) this.deps.clock.clearTimeout(this.graceTimer);
    const report = { v: SCHEMA_VERSION, runId: this.runId, name: this.playbook.name, status: this.plan.status, startedAt: this.startedAt, endedAt: this.deps.now(), steps: this.plan.steps() } as const;
    this.emit({ type: 'finished', report });
    this.deps.onFinished(this.runId);
  }

  private emit(event: DistributiveOmit<RunEvent, 'v' | 'runId'>): void {
    this.deps.publish(runEventsTopic(this.runId), { v: SCHEMA_VERSION, runId: this.runId, ...event });
  }
}

import { z } from 'zod';
import { SCHEMA_VERSION, Timestamp } from '../messages.js';

// ─── Orchestrator (issue 5) ─────────────────────────────────────────────────────────────────────
// Synchronised playbooks: clock pings between agent and hub, "start at T" commands to agents,
// their results, and a run's request, events and report. Times named `…At` here are milliseconds
// since the epoch as fractional numbers: sub-millisecond skew is the point, ISO strings lose it.
// Plain-word seed statuses (ALIVE, STARTED, …) are not JSON and not defined here.

const EpochMs = z.number().finite().nonnegative();
/** Node, step, run and action names become topic levels or argv selectors: no separators. */
export const OrchestratorName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'use 1-64 letters, digits, ".", "_" or "-"');

/** Agent → hub: one NTP-style clock ping; `t0` is the agent's send time. */
export const TimeRequest = z.object({ v: z.literal(SCHEMA_VERSION), agent: OrchestratorName, seq: z.number().int().nonnegative(), t0: EpochMs });
export type TimeRequest = z.infer<typeof TimeRequest>;

/** Hub → agent: `t1` when the hub received the ping, `t2` when it replied (hub clock). */
export const TimeReply = TimeRequest.omit({ agent: true }).extend({ t1: EpochMs, t2: EpochMs });
export type TimeReply = z.infer<typeof TimeReply>;

/** The agent's best estimate of (hub clock − own clock); the true offset is within ±errorMs. */
export const ClockEstimate = z.object({
  offsetMs: z.number().finite(),
  rttMs: z.number().nonnegative(),
  errorMs: z.number().nonnegative(),
  samples: z.number().int().positive(),
  measuredAt: EpochMs,
});
export type ClockEstimate = z.infer<typeof ClockEstimate>;

/** Retained per agent: it can take native commands, which actions it offers, how good its clock is. */
export const NodeInfo = z.object({
  v: z.literal(SCHEMA_VERSION),
  agent: OrchestratorName,
  seedNode: OrchestratorName,
  actions: z.array(OrchestratorName),
  clock: ClockEstimate.nullable(),
  at: EpochMs,
});
export type NodeInfo = z.infer<typeof NodeInfo>;

export const NodeCommand = z.discriminatedUnion('kind', [
  z.object({
    v: z.literal(SCHEMA_VERSION),
    kind: z.literal('start'),
    runId: OrchestratorName,
    stepId: OrchestratorName,
    action: OrchestratorName,
    args: z.array(z.string().max(256)).max(64),
    /** Hub clock: the agent starts at startAt − its measured offset. */
    startAt: EpochMs,
    /** Stop the action this long after it started (null: let it end by itself). */
    durationMs: z.number().positive().nullable(),
    sentAt: EpochMs,
  }),
  /** Stops the run's action on this agent (stepId null: any step of the run). */
  z.object({ v: z.literal(SCHEMA_VERSION), kind: z.literal('stop'), runId: OrchestratorName, stepId: OrchestratorName.nullable() }),
]);
export type NodeCommand = z.infer<typeof NodeCommand>;

/**
 * How one node's part of a step ended. ok: exited 0, or was stopped by its `duration`;
 * failed: non-zero exit or could not start; stopped: stopped by a cancel or a failed step;
 * refused: unknown action or arguments not allowed; busy: another action was running;
 * lost: the agent went offline; timeout: no result within the step's timeout.
 */
export const NodeOutcome = z.enum(['ok', 'failed', 'stopped', 'refused', 'busy', 'lost', 'timeout']);
export type NodeOutcome = z.infer<typeof NodeOutcome>;

export const NodeReport = z.object({
  node: OrchestratorName,
  outcome: NodeOutcome.nullable(),
  /** Hub clock (own clock + measured offset). */
  startedAt: EpochMs.nullable(),
  endedAt: EpochMs.nullable(),
  /** startedAt − the requested start instant: how late this node started. */
  lateByMs: z.number().nullable(),
  /** How long before the start instant the command arrived (negative: it arrived late). */
  leadMs: z.number().nullable(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  stoppedBy: z.enum(['duration', 'stop']).nullable(),
  clockErrorMs: z.number().nonnegative().nullable(),
  /** The offset used (hub − agent clock): startedAt − clockOffsetMs is the agent's own clock. */
  clockOffsetMs: z.number().nullable(),
  outputTail: z.string().max(8192),
  error: z.string().max(1000).nullable(),
});
export type NodeReport = z.infer<typeof NodeReport>;

/** Agent → hub (and, for seed commands, on `<root>/<node>/RESULT`): phase started, then finished. */
export const NodeResult = NodeReport.extend({
  v: z.literal(SCHEMA_VERSION),
  runId: OrchestratorName,
  stepId: OrchestratorName,
  phase: z.enum(['started', 'finished']),
});
export type NodeResult = z.infer<typeof NodeResult>;

/** CLI → hub: run this native playbook (the YAML text; the engine parses and validates it). */
export const RunRequest = z.object({
  v: z.literal(SCHEMA_VERSION),
  runId: OrchestratorName,
  file: z.string().max(1024),
  playbook: z.string().max(1024 * 1024),
  requestedAt: Timestamp,
});
export type RunRequest = z.infer<typeof RunRequest>;

/** CLI → hub: stop every running action of the run (Ctrl-C). */
export const RunCancel = z.object({ v: z.literal(SCHEMA_VERSION), runId: OrchestratorName, reason: z.string().max(200) });
export type RunCancel = z.infer<typeof RunCancel>;

export const StepStatus = z.enum(['pending', 'running', 'ok', 'failed', 'skipped', 'cancelled']);
export type StepStatus = z.infer<typeof StepStatus>;

export const StepReport = z.object({
  id: OrchestratorName,
  kind: z.enum(['action', 'barrier']),
  action: z.string().nullable(),
  args: z.array(z.string()),
  status: StepStatus,
  /** The common start instant T sent to every node (hub clock). */
  startAt: EpochMs.nullable(),
  /** max − min of the nodes' actual start times. */
  skewMs: z.number().nonnegative().nullable(),
  nodes: z.array(NodeReport),
  error: z.string().nullable(),
});
export type StepReport = z.infer<typeof StepReport>;

export const RunReport = z.object({
  v: z.literal(SCHEMA_VERSION),
  runId: OrchestratorName,
  name: z.string(),
  status: z.enum(['ok', 'failed', 'cancelled']),
  startedAt: EpochMs,
  endedAt: EpochMs,
  steps: z.array(StepReport),
});
export type RunReport = z.infer<typeof RunReport>;

/** Hub → CLI, on the run's events topic, in order. */
export const RunEvent = z.discriminatedUnion('type', [
  z.object({ v: z.literal(SCHEMA_VERSION), type: z.literal('accepted'), runId: OrchestratorName, steps: z.array(OrchestratorName) }),
  z.object({ v: z.literal(SCHEMA_VERSION), type: z.literal('rejected'), runId: OrchestratorName, error: z.string() }),
  z.object({
    v: z.literal(SCHEMA_VERSION),
    type: z.literal('step'),
    runId: OrchestratorName,
    stepId: OrchestratorName,
    status: StepStatus,
    nodes: z.array(OrchestratorName),
    startAt: EpochMs.nullable(),
    error: z.string().nullable(),
  }),
  z.object({ v: z.literal(SCHEMA_VERSION), type: z.literal('node'), runId: OrchestratorName, stepId: OrchestratorName, phase: z.enum(['started', 'finished']), report: NodeReport }),
  z.object({ v: z.literal(SCHEMA_VERSION), type: z.literal('finished'), runId: OrchestratorName, report: RunReport }),
]);
export type RunEvent = z.infer<typeof RunEvent>;

import type { NodeReport, RunEvent, RunReport } from '../shared/contract/orchestrator-messages.js';
import type { SeedReport } from './seed-player.js';
import { formatTable } from './text-table.js';

const ms = (n: number | null, digits = 2) => (n === null ? '-' : `${n.toFixed(digits)} ms`);
const secs = (from: number | null, to: number | null) => (from === null || to === null ? '-' : `${((to - from) / 1000).toFixed(2)} s`);

function how(n: NodeReport): string {
  if (n.outcome === null) return 'running';
  if (n.stoppedBy === 'duration') return 'ok (stopped after its duration)';
  if (n.outcome === 'ok') return `ok (exit ${n.exitCode})`;
  return n.error ? `${n.outcome}: ${n.error}` : n.outcome;
}

/** One progress line per run event, or null for events not worth a line. */
export function describeRunEvent(e: RunEvent): string | null {
  switch (e.type) {
    case 'accepted':
      return `run ${e.runId} accepted by the hub (${e.steps.length} steps)`;
    case 'rejected':
      return `run rejected: ${e.error}`;
    case 'step':
      if (e.status === 'running') return `▶ ${e.stepId} on ${e.nodes.join(', ')}`;
      return `${e.status === 'ok' ? '✔' : '✘'} ${e.stepId} ${e.status}${e.error ? `: ${e.error}` : ''}`;
    case 'node':
      if (e.phase === 'started') return `  ${e.stepId}/${e.report.node} started ${ms(e.report.lateByMs, 3)} after T`;
      return `  ${e.stepId}/${e.report.node} ${how(e.report)}`;
    case 'finished':
      return null;
  }
}

/** The native run's summary: one row per step and node, times relative to the step's start T. */
export function renderRunReport(report: RunReport): string {
  const rows: string[][] = [];
  for (const step of report.steps) {
    if (step.kind === 'barrier') {
      rows.push([step.id, step.status, '(barrier)', '', '', '', '', '']);
      continue;
    }
    if (step.nodes.length === 0) rows.push([step.id, step.status, '-', '-', '-', '-', '-', step.error ?? '']);
    for (const n of step.nodes) {
      const late = n.startedAt !== null && step.startAt !== null ? ms(n.startedAt - step.startAt, 3) : '-';
      rows.push([step.id, step.status, n.node, n.outcome ?? '-', late, secs(n.startedAt, n.endedAt), n.exitCode === null ? (n.signal ?? '-') : String(n.exitCode), (n.error ?? '').slice(0, 80)]);
    }
  }
  const skews = report.steps.filter((s) => s.skewMs !== null && s.nodes.length > 1).map((s) => `${s.id} ${ms(s.skewMs, 3)}`);
  return (
    formatTable(['STEP', 'STATUS', 'NODE', 'OUTCOME', 'START-T', 'RAN', 'EXIT', 'ERROR'], rows) +
    (skews.length ? `start skew (max − min): ${skews.join(', ')}\n` : '') +
    `run ${report.name} ${report.status} in ${secs(report.startedAt, report.endedAt)}\n`
  );
}

/** The seed run's summary: one row per instruction, then what the nodes reported. */
export function renderSeedReport(report: SeedReport): string {
  const rows = report.instructions.map((i) => [String(i.line), i.status, secs(i.startedAt, i.endedAt), i.text, (i.detail ?? '').slice(0, 80)]);
  let out = formatTable(['LINE', 'STATUS', 'TIME', 'INSTRUCTION', 'DETAIL'], rows);
  if (report.results.length) {
    const results = report.results.map((r) => [r.node, r.stepId, r.outcome ?? '-', secs(r.startedAt, r.endedAt), r.exitCode === null ? (r.signal ?? '-') : String(r.exitCode)]);
    out += `\n${formatTable(['NODE', 'ACTION', 'OUTCOME', 'RAN', 'EXIT'], results)}`;
  }
  return `${out}playbook ${report.file} ${report.status} in ${secs(report.startedAt, report.endedAt)}\n`;
}

import type { NodeReport, RunEvent, RunRequest, StepReport } from '../../shared/contract/orchestrator-messages.js';
import { paged, type Paged } from './paged.js';

export type PlaybookStep = Pick<StepReport, 'id' | 'status' | 'action' | 'error' | 'skewMs'> & {
  startAt: string | null;
  /** Each node's report: started, then finished (outcome, exit code, output tail). */
  nodes: NodeReport[];
};

/** A playbook run of the orchestrator engine (GET /api/v1/playbooks/runs), from its request and events. */
export type PlaybookRun = {
  runId: string;
  file: string | null;
  name: string | null;
  /** requested: asked for, no answer yet; rejected: refused before any step ran (see error). */
  status: 'requested' | 'running' | 'ok' | 'failed' | 'cancelled' | 'rejected';
  error: string | null;
  requestedAt: string | null;
  startedAt: string | null;
  endedAt: string | null;
  steps: PlaybookStep[];
};

export type PlaybookRunSummary = Omit<PlaybookRun, 'steps'> & { steps: number; stepsDone: number };

const DONE: readonly PlaybookStep['status'][] = ['ok', 'failed', 'skipped', 'cancelled'];
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * The newest playbook runs as the orchestrator engine announced them on
 * `pushfleet/orchestrator/runs/{run}/request|events`: `max` runs at most, the one seen first
 * forgotten first. The engine keeps no history of its own: a run is known here from the first
 * message this hub process saw of it.
 */
export class PlaybookRunsView {
  private readonly runs = new Map<string, PlaybookRun>();

  constructor(
    private readonly max: number,
    private readonly now: () => number,
  ) {}

  request(req: RunRequest): void {
    const run = this.run(req.runId);
    run.file = req.file;
    run.requestedAt = req.requestedAt;
  }

  event(e: RunEvent): void {
    const run = this.run(e.runId);
    switch (e.type) {
      case 'accepted':
        run.status = 'running';
        run.startedAt = iso(this.now());
        run.steps = e.steps.map((id) => ({ id, status: 'pending', action: null, error: null, skewMs: null, startAt: null, nodes: [] }));
        return;
      case 'rejected':
        run.status = 'rejected';
        run.error = e.error;
        run.endedAt = iso(this.now());
        return;
      case 'step': {
        const step = this.step(run, e.stepId);
        step.status = e.status;
        step.error = e.error;
        step.startAt = iso(e.startAt);
        return;
      }
      case 'node': {
        const step = this.step(run, e.stepId);
        const at = step.nodes.findIndex((n) => n.node === e.report.node);
        if (at < 0) step.nodes.push(e.report);
        else step.nodes[at] = e.report;
        return;
      }
      case 'finished': {
        const r = e.report;
        Object.assign(run, { status: r.status, name: r.name, startedAt: iso(r.startedAt), endedAt: iso(r.endedAt) });
        run.steps = r.steps.map((s) => ({ id: s.id, status: s.status, action: s.action, error: s.error, skewMs: s.skewMs, startAt: iso(s.startAt), nodes: s.nodes }));
        return;
      }
    }
  }

  get(runId: string): PlaybookRun | undefined {
    return this.runs.get(runId);
  }

  /** Newest first, without each step's nodes. */
  list(page: { offset: number; limit: number }): Paged<PlaybookRunSummary> {
    const out = paged([...this.runs.values()].reverse(), page);
    return { ...out, items: out.items.map(({ steps, ...run }) => ({ ...run, steps: steps.length, stepsDone: steps.filter((s) => DONE.includes(s.status)).length })) };
  }

  private run(runId: string): PlaybookRun {
    let run = this.runs.get(runId);
    if (run) return run;
    if (this.runs.size >= this.max) this.runs.delete(this.runs.keys().next().value!);
    run = { runId, file: null, name: null, status: 'requested', error: null, requestedAt: null, startedAt: null, endedAt: null, steps: [] };
    this.runs.set(runId, run);
    return run;
  }

  private step(run: PlaybookRun, id: string): PlaybookStep {
    let step = run.steps.find((s) => s.id === id);
    if (!step) {
      step = { id, status: 'pending', action: null, error: null, skewMs: null, startAt: null, nodes: [] };
      run.steps.push(step);
    }
    return step;
  }
}

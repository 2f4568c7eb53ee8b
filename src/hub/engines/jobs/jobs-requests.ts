import { JobsRequest, jobsReplyTopic, type JobsReply, type RowView } from '../../../shared/contract/jobs-engine-messages.js';
import { decode, SCHEMA_VERSION } from '../../../shared/messages.js';
import { publishAndForget, type EngineContext } from '../engine.js';
import type { JobExecutor, JobRow, LogStore, RowError, Run } from './model.js';
import { isFinished, type RunStore } from './run-store.js';

/** A reply carries at most this much of a run's logs: the tail, where the failure is. */
export const MAX_LOGS_REPLY = 1_000_000;

/** The table as the engine last loaded it. */
export type TableState = { location: string; version: string | null; error: string | null; errors: RowError[] };

export type RequestsView = {
  ctx: EngineContext;
  state: TableState;
  rows: readonly JobRow[];
  store: RunStore;
  logs: LogStore;
  executors: Partial<Record<JobRow['executor'], JobExecutor>>;
  /** Makes a run of `row` as a trigger on its topic would (topic ''). */
  trigger(row: JobRow, payload: Buffer): Run;
};

/** Answers one operator request on `pushfleet/jobs/request` (`pushfleet jobs …`). */
export async function answerJobsRequest(view: RequestsView, payload: Buffer): Promise<void> {
  const d = decode(JobsRequest, payload);
  if (!d.ok) {
    // Without a valid requestId there is nowhere to answer: the CLI validates before sending.
    view.ctx.log.warn({ engine: 'jobs', error: d.error }, 'jobs: ignored malformed request');
    return;
  }
  const req = d.value;
  const reply = (error: string | null, extra: Partial<JobsReply> = {}) => {
    const msg: JobsReply = { v: SCHEMA_VERSION, requestId: req.requestId, ok: error === null, error, ...extra };
    publishAndForget(view.ctx, 'jobs', jobsReplyTopic(req.requestId), JSON.stringify(msg));
  };
  const noRun = (id: string) => `no run ${id}: see "pushfleet jobs runs"`;
  view.ctx.log.info({ engine: 'jobs', op: req.op, by: req.by }, 'jobs request');
  switch (req.op) {
    case 'list': {
      const { location, version, error, errors } = view.state;
      return reply(null, { table: { location, version, error }, rows: view.rows.map((r) => rowView(r, view.store.activeOf(r.jobName).length)), errors });
    }
    case 'runs':
      return reply(null, { runs: view.store.recent(req.limit, req.job) });
    case 'show': {
      const run = view.store.get(req.run);
      if (!run) return reply(noRun(req.run));
      const { duties: _duties, ...shown } = run;
      return reply(null, { run: shown });
    }
    case 'logs': {
      const run = view.store.get(req.run);
      if (!run) return reply(noRun(req.run));
      try {
        const text = isFinished(run) ? await view.logs.get(run) : await view.executors[run.executor]?.logs(run);
        if (text === undefined) return reply(`run ${run.id} has no logs kept${run.status === 'pending' ? ' (it has not started)' : ''}`);
        return reply(null, { logs: tail(text) });
      } catch (err) {
        return reply(`logs of run ${run.id}: ${(err as Error).message}`);
      }
    }
    case 'trigger': {
      const row = view.rows.find((r) => r.jobName === req.job);
      if (!row) return reply(`no job ${req.job} in the table: see "pushfleet jobs list"`);
      view.ctx.log.info({ engine: 'jobs', job: row.jobName, by: req.by }, 'jobs: triggered by an operator');
      return reply(null, { run: view.trigger(row, Buffer.from(req.payload)) });
    }
  }
}

function rowView(row: JobRow, active: number): RowView {
  return { line: row.line, jobName: row.jobName, mqttTopic: row.mqttTopic, executor: row.executor, concurrency: row.concurrency, target: row.executor === 'kubernetes' ? row.image : row.action, active };
}

function tail(text: string): string {
  if (text.length <= MAX_LOGS_REPLY) return text;
  return `[${text.length - MAX_LOGS_REPLY} earlier characters left out]\n${text.slice(-MAX_LOGS_REPLY)}`;
}

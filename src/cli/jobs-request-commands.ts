import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { JobsReply, RunView } from '../shared/contract/jobs-engine-messages.js';
import { JOBS, type JobsOp } from './jobs-request.js';
import { withMqttFlags, type MqttFlags } from './mqtt-flags.js';
import { askEngine } from './mqtt-request.js';
import { checkedArg, CommandError, EXIT, parsePositiveNumber, runCommand } from './process-lifecycle.js';
import { formatTable } from './text-table.js';

type Flags = MqttFlags & { wait: number; json?: boolean };

const runArg = checkedArg((v) => /^[0-9a-f]{10}$/.test(v), 'a run id: 10 lowercase hex (see "pushfleet jobs runs")');
const jobArg = checkedArg((v) => /^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$/.test(v), 'a job_name of the table (see "pushfleet jobs list")');

/** One request to the hub's jobs engine; a refusal is the command's one-line error. */
const ask = (flags: Flags, op: JobsOp): Promise<JobsReply> => askEngine(flags, JOBS, op);

const json = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
const when = (ms?: number) => (ms === undefined ? '-' : new Date(ms).toISOString().replace('.000Z', 'Z'));
const took = (r: RunView) => (r.startedAt !== undefined && r.endedAt !== undefined ? `${((r.endedAt - r.startedAt) / 1000).toFixed(1)}s` : '-');

async function list(flags: Flags): Promise<number> {
  const reply = await ask(flags, { op: 'list' });
  if (flags.json) return void json({ table: reply.table, rows: reply.rows, errors: reply.errors }), EXIT.ok;
  const t = reply.table!;
  process.stdout.write(`table ${t.location}${t.version ? ` (version ${t.version})` : ''}${t.error ? `\n  ${t.error}` : ''}\n\n`);
  process.stdout.write(formatTable(['JOB', 'TOPIC', 'EXECUTOR', 'CONCURRENCY', 'IMAGE/ACTION', 'ACTIVE'], (reply.rows ?? []).map((r) => [r.jobName, r.mqttTopic, r.executor, r.concurrency, r.target, String(r.active)])));
  for (const e of reply.errors ?? []) process.stdout.write(`line ${e.line}${e.jobName ? ` (${e.jobName})` : ''}: ${e.reason}\n`);
  return reply.errors?.length ? EXIT.failure : EXIT.ok;
}

async function runs(flags: Flags & { job?: string; limit: number }): Promise<number> {
  const reply = await ask(flags, { op: 'runs', limit: flags.limit, ...(flags.job && { job: flags.job }) });
  const found = reply.runs ?? [];
  if (flags.json) return void json(found), EXIT.ok;
  process.stdout.write(formatTable(['RUN', 'JOB', 'STATUS', 'CREATED', 'TOOK', 'REASON'], found.map((r) => [r.id, r.job, r.status, when(r.createdAt), took(r), (r.reason ?? '').slice(0, 80)])));
  return EXIT.ok;
}

async function show(id: string, flags: Flags): Promise<number> {
  const run = (await ask(flags, { op: 'show', run: id })).run!;
  if (flags.json) return void json(run), EXIT.ok;
  const lines: [string, string][] = [
    ['run', run.id],
    ['job', `${run.job} (${run.name}, ${run.executor}${run.agent ? ` on ${run.agent}` : ''})`],
    ['status', run.status + (run.reason ? `: ${run.reason}` : '')],
    ['trigger', run.topic === '' ? '(pushfleet jobs trigger)' : run.topic],
    ['params', Object.entries(run.params).map(([k, v]) => `${k}=${v}`).join(' ') || '-'],
    ['created', when(run.createdAt)],
    ['started', when(run.startedAt)],
    ['ended', when(run.endedAt)],
    ['logs', run.logs ?? '-'],
    ['payload', run.payload.length > 200 ? `${run.payload.slice(0, 200)}… (${run.payload.length} characters)` : run.payload],
  ];
  process.stdout.write(lines.map(([k, v]) => `${k.padEnd(8)} ${v}`).join('\n') + '\n');
  return run.status === 'failed' ? EXIT.failure : EXIT.ok;
}

async function logs(id: string, flags: Flags): Promise<number> {
  process.stdout.write((await ask(flags, { op: 'logs', run: id })).logs ?? '');
  return EXIT.ok;
}

async function trigger(job: string, flags: Flags & { payload?: string }): Promise<number> {
  let payload = '';
  if (flags.payload !== undefined) {
    try {
      payload = readFileSync(flags.payload === '-' ? 0 : flags.payload, 'utf8');
    } catch (err) {
      throw new CommandError(`cannot read --payload ${flags.payload}: ${(err as Error).message}`);
    }
  }
  const run = (await ask(flags, { op: 'trigger', job, payload })).run!;
  if (flags.json) return void json(run), EXIT.ok;
  process.stdout.write(`run ${run.id} (${run.name}): ${run.status}${run.reason ? `: ${run.reason}` : ''}\n`);
  return run.status === 'failed' ? EXIT.failure : EXIT.ok;
}

/** `pushfleet jobs list|runs|show|logs|trigger`: requests to the hub's jobs engine (operator only). */
export function addJobsRequestCommands(cmd: Command): void {
  const sub = (name: string, description: string) =>
    withMqttFlags(cmd.command(name).description(description)).option('--wait <seconds>', 'how long to wait for the broker and the hub', parsePositiveNumber, 5);
  sub('list', "the hub's jobs table as loaded: its rows, and its bad rows with line and reason (exit 1 if any)")
    .option('--json', 'print JSON')
    .action((flags: Flags) => runCommand(() => list(flags)));
  sub('runs', 'the newest runs, newest first')
    .option('--job <name>', 'only runs of this job', (v) => jobArg(v))
    .option('--limit <n>', 'how many', parsePositiveNumber, 50)
    .option('--json', 'print JSON')
    .action((flags: Flags & { job?: string; limit: number }) => runCommand(() => runs(flags)));
  sub('show', 'one run: status, reason, trigger, parameters, times (exit 1 if it failed)')
    .argument('<run>', 'run id', runArg)
    .option('--json', 'print JSON')
    .action((id: string, flags: Flags) => runCommand(() => show(id, flags)));
  sub('logs', "one run's logs: kept ones once it ended, its output so far while it runs")
    .argument('<run>', 'run id', runArg)
    .action((id: string, flags: Flags) => runCommand(() => logs(id, flags)));
  sub('trigger', 'start a run of a job now, as a message on its topic would (exit 1 if the run failed at once)')
    .argument('<job>', 'job_name', jobArg)
    .option('--payload <file>', 'the trigger payload, from this file ("-": standard input); default empty')
    .option('--json', 'print the run as JSON')
    .action((job: string, flags: Flags & { payload?: string }) => runCommand(() => trigger(job, flags)));
}

import Database from 'better-sqlite3';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { EngineContext } from '../../src/hub/engines/engine.js';
import { JobsConfig } from '../../src/hub/engines/jobs/config.js';
import { JobsEngine } from '../../src/hub/engines/jobs/jobs-engine.js';
import type { AgentRow, JobExecutor, JobRow, LogStore, Run, RunUpdate } from '../../src/hub/engines/jobs/model.js';
import { TopicContract } from '../../src/shared/contract/topic-table.js';
import { refusePublish } from '../../src/shared/contract/access.js';
import { ManualClock } from '../support/manual-clock.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const P = 'services/mqtt_job_listener';

function row(jobName: string, mqttTopic: string, over: Partial<AgentRow> = {}): AgentRow {
  return { line: 2, jobName, mqttTopic, concurrency: 'allow', params: {}, executor: 'agent', action: 'a', selector: {}, timeoutSeconds: 60, ...over };
}

/** A stand-in executor: records what the engine asks, and lets the test report progress. */
class StandInExecutor implements JobExecutor {
  readonly kind = 'agent' as const;
  readonly calls: string[] = [];
  readonly watchers = new Map<string, (u: RunUpdate) => void>();
  /** The run's status in the store when start was called (durable intent before action). */
  readonly statusAtStart = new Map<string, string | undefined>();
  constructor(private readonly db: Database.Database) {}
  async start(run: Run): Promise<void> {
    this.statusAtStart.set(run.id, this.db.prepare<[string], { status: string }>('SELECT status FROM job_runs WHERE id = ?').get(run.id)?.status);
    this.calls.push(`start ${run.name}`);
  }
  watch(run: Run, onUpdate: (u: RunUpdate) => void): () => void {
    this.calls.push(`watch ${run.id}`);
    this.watchers.set(run.id, onUpdate);
    return () => this.watchers.delete(run.id);
  }
  async stop(run: Run): Promise<void> {
    this.calls.push(`stop ${run.id}`);
  }
  async logs(run: Run): Promise<string> {
    return `output of ${run.id}\n`;
  }
  async remove(run: Run): Promise<void> {
    this.calls.push(`remove ${run.id}`);
  }
}

const memoryLogs = (): LogStore & { kept: Map<string, string> } => {
  const kept = new Map<string, string>();
  return { kept, put: async (run, text) => (kept.set(run.id, text), `mem:${run.id}`), get: async (run) => kept.get(run.id), delete: async (run) => void kept.delete(run.id) };
};

const flush = () => new Promise((r) => setTimeout(r, 5));

/** The engine over an in-memory SQLite file, a recording publisher and a manual clock; pass `db` of an earlier hub to restart. */
async function startEngine(rows: JobRow[], opts: { db?: Database.Database; config?: Record<string, unknown>; ids?: string[] } = {}) {
  const db = opts.db ?? new Database(':memory:');
  const clock = new ManualClock(T0);
  const sent: { topic: string; payload: string }[] = [];
  const contract = new TopicContract();
  const ctx: EngineContext = { publisher: { publish: async (topic, payload) => void sent.push({ topic, payload }) }, db, clock, log: pino({ level: 'silent' }), contract };
  const table = { rows, version: 1, broken: '' };
  const executor = new StandInExecutor(db);
  const logs = memoryLogs();
  const ids = opts.ids ? [...opts.ids] : undefined;
  const engine = new JobsEngine(ctx, JobsConfig.parse({ table: 'mem', ...opts.config }), {
    source: {
      location: 'mem',
      read: async (since) => {
        if (table.broken) throw new Error(table.broken);
        return since === String(table.version) ? 'unchanged' : { text: JSON.stringify(table.rows), version: String(table.version), format: 'yaml' };
      },
    },
    parse: (text, refuse) => {
      const all = JSON.parse(text.text) as JobRow[];
      const errors = all.flatMap((r) => (refuse(r) ? [{ line: r.line, jobName: r.jobName, reason: refuse(r)! }] : []));
      return { rows: all.filter((r) => !refuse(r)), errors };
    },
    executors: { agent: executor },
    logs,
    ...(ids && { newId: () => ids.shift()! }),
  });
  let resubscribed = 0;
  engine.onSubscriptionsChange(async () => void resubscribed++);
  await engine.start();
  const send = async (topic: string, payload = '', delivery?: { messageId?: number; dup: boolean }) => {
    await engine.handle(topic, Buffer.from(payload), delivery);
    await flush();
  };
  const runs = () => db.prepare<[], { id: string; job: string; status: string; reason: string | null; announced: number }>('SELECT id, job, status, reason, announced FROM job_runs ORDER BY seq').all();
  const completions = (job?: string) => sent.filter((m) => m.topic.startsWith(`${P}/job_`) && (!job || m.topic.endsWith(`/${job}`))).map((m) => ({ ...(JSON.parse(m.payload) as { run: string; status: string; reason: string }), at: m.topic }));
  return { db, engine, executor, logs, sent, send, runs, completions, clock, contract, table, resubscribed: () => resubscribed };
}

describe('JobsEngine', () => {
  it('records a trigger as a pending run before the executor is asked to start it, and publishes its end once', async () => {
    const hub = await startEngine([row('resize', 'images/+')], { ids: ['0000000001'] });
    await hub.send('images/a', 'hello');
    expect(hub.executor.statusAtStart.get('0000000001')).toBe('pending');
    expect(hub.executor.calls).toEqual(['start resize-0000000001', 'watch 0000000001']);
    hub.executor.watchers.get('0000000001')!({ status: 'running', at: T0 + 10, agent: 'a1' });
    hub.executor.watchers.get('0000000001')?.({ status: 'succeeded', at: T0 + 50, reason: 'exit code 0' });
    hub.executor.watchers.get('0000000001')?.({ status: 'failed', at: T0 + 60, reason: 'late' });
    await flush();
    expect(hub.completions()).toEqual([expect.objectContaining({ at: `${P}/job_complete/resize`, run: '0000000001', status: 'succeeded', reason: 'exit code 0', payload: 'hello', durationMs: 40 })]);
    expect(hub.logs.kept.get('0000000001')).toBe('output of 0000000001\n');
    expect(hub.executor.calls.at(-1)).toBe('remove 0000000001');
    expect(hub.runs()).toEqual([{ id: '0000000001', job: 'resize', status: 'succeeded', reason: 'exit code 0', announced: 1 }]);
  });

  it('publishes a failure on job_complete and job_failed; a payload that fails validation is a failed run at once', async () => {
    const hub = await startEngine([row('resize', 'images/+', { params: { size: { pattern: '[0-9]+', required: true } } })]);
    await hub.send('images/a', '{"size":"big"}');
    expect(hub.executor.calls).toEqual([]);
    expect(hub.completions().map((c) => [c.at, c.status, c.reason])).toEqual([
      [`${P}/job_complete/resize`, 'failed', 'parameter size does not match [0-9]+ (job resize): "big"'],
      [`${P}/job_failed/resize`, 'failed', 'parameter size does not match [0-9]+ (job resize): "big"'],
    ]);
  });

  it('forbid records a second trigger as a failed run; replace stops and cancels the run under way before starting the new one', async () => {
    const hub = await startEngine([row('one', 'one', { concurrency: 'forbid' }), row('swap', 'swap', { concurrency: 'replace' })], { ids: ['00000000a1', '00000000a2', '00000000b1', '00000000b2'] });
    await hub.send('one');
    await hub.send('one');
    expect(hub.completions('one')).toEqual([expect.objectContaining({ run: '00000000a2', status: 'failed', reason: 'skipped: run 00000000a1 still under way (concurrency: forbid)' }), expect.objectContaining({ run: '00000000a2', at: `${P}/job_failed/one` })]);
    await hub.send('swap');
    await hub.send('swap');
    const swaps = hub.executor.calls.filter((c) => c.includes('0000000b'));
    expect(swaps.slice(0, 4)).toEqual(['start swap-00000000b1', 'watch 00000000b1', 'stop 00000000b1', 'start swap-00000000b2']);
    expect(swaps.slice(4).sort()).toEqual(['remove 00000000b1', 'watch 00000000b2']);
    expect(hub.completions('swap')).toEqual([expect.objectContaining({ run: '00000000b1', status: 'cancelled', reason: 'replaced by run 00000000b2' })]);
    // The replaced run's own end, reported by its executor afterwards, changes nothing.
    expect(hub.executor.watchers.has('00000000b1')).toBe(false);
  });

  it('picks up after a restart: pending runs are started again, running ones watched, ended but unannounced ones published once', async () => {
    const db = new Database(':memory:');
    const first = await startEngine([row('a', 'a'), row('b', 'b'), row('c', 'c')], { db, ids: ['000000000a', '000000000b', '000000000c'] });
    await first.send('a');
    await first.send('b');
    await first.send('c');
    first.executor.watchers.get('000000000b')!({ status: 'running', at: T0 + 1 });
    // Killed at once: c ended in the store but was never announced, a never got past its start.
    db.prepare("UPDATE job_runs SET status = 'pending' WHERE id = '000000000a'").run();
    db.prepare("UPDATE job_runs SET status = 'succeeded', reason = 'done', ended_at = ? WHERE id = '000000000c'").run(T0 + 2);
    await first.engine.stop();

    const second = await startEngine([row('a', 'a'), row('b', 'b'), row('c', 'c')], { db });
    await flush();
    expect(second.executor.calls.sort()).toEqual(['remove 000000000c', 'start a-000000000a', 'watch 000000000a', 'watch 000000000b'].sort());
    expect(second.completions()).toEqual([expect.objectContaining({ run: '000000000c', status: 'succeeded' })]);
    second.executor.watchers.get('000000000b')!({ status: 'failed', at: T0 + 5, reason: 'exit code 1' });
    await flush();
    await second.engine.stop();
    const third = await startEngine([row('a', 'a')], { db });
    await flush();
    expect(third.completions()).toEqual([]);
    expect(second.completions().map((c) => `${c.run} ${c.status}`)).toEqual(['000000000c succeeded', '000000000b failed', '000000000b failed']);
  });

  it('a pending run whose row left the table meanwhile fails, saying so', async () => {
    const db = new Database(':memory:');
    const first = await startEngine([row('a', 'a')], { db, ids: ['000000000a'] });
    await first.send('a');
    db.prepare("UPDATE job_runs SET status = 'pending'").run();
    await first.engine.stop();
    const second = await startEngine([], { db });
    await flush();
    expect(second.completions()).toEqual([expect.objectContaining({ run: '000000000a', status: 'failed', reason: 'job a is no longer in the table (mem); the run was never started' }), expect.anything()]);
  });

  it("a broker's redelivery (DUP, same packet id, topic and payload) makes no second run; a new message with a reused packet id does", async () => {
    const hub = await startEngine([row('a', 'a/+')]);
    await hub.send('a/1', 'x', { messageId: 7, dup: false });
    await hub.send('a/1', 'x', { messageId: 7, dup: true });
    expect(hub.runs()).toHaveLength(1);
    await hub.send('a/1', 'x', { messageId: 7, dup: false });
    await hub.send('a/1', 'y', { messageId: 7, dup: true });
    await hub.send('a/2', 'x', { messageId: 7, dup: true });
    expect(hub.runs()).toHaveLength(4);
  });

  it('reloads: added rows are subscribed and trigger, removed ones unsubscribed and trigger nothing; rows on pushfleet topics are row errors', async () => {
    const hub = await startEngine([row('a', 'a'), row('bad', 'pushfleet/agents/+/status', { line: 3 }), row('chain', `${P}/job_complete/a`, { line: 4 })]);
    expect(hub.engine.subscriptions).toEqual([`${P}/refresh`, 'pushfleet/jobs/request', 'a', `${P}/job_complete/a`]);
    expect(hub.sent.filter((m) => m.topic === `${P}/error`).map((m) => JSON.parse(m.payload))).toEqual([
      { v: 1, kind: 'row', line: 3, job: 'bad', reason: expect.stringMatching(/^mqtt_topic pushfleet\/agents\/\+\/status reaches pushfleet's own topics \(agent\.status\)/) },
    ]);
    expect(refusePublish(hub.contract, { name: 'c', role: 'client' }, 'a')).toBeNull();
    expect(refusePublish(hub.contract, { name: 'c', role: 'agent' }, 'a')).toMatch(/job trigger/);
    hub.table.rows = [row('b', 'b/#')];
    hub.table.version++;
    const before = hub.resubscribed();
    hub.clock.advance(10_000);
    await flush();
    expect(hub.resubscribed()).toBe(before + 1);
    expect(hub.engine.subscriptions).toEqual([`${P}/refresh`, 'pushfleet/jobs/request', 'b/#']);
    expect(refusePublish(hub.contract, { name: 'c', role: 'client' }, 'a')).toMatch(/outside pushfleet's topics/);
    await hub.send('a');
    await hub.send('b/x/y');
    expect(hub.runs().map((r) => r.job)).toEqual(['b']);
  });

  it('a table that cannot be read is reported once, and the rows loaded before keep working', async () => {
    const hub = await startEngine([row('a', 'a')]);
    hub.table.broken = 'ENOENT: no such file';
    hub.clock.advance(10_000);
    await flush();
    hub.clock.advance(10_000);
    await flush();
    expect(hub.sent.filter((m) => m.topic === `${P}/error`).map((m) => JSON.parse(m.payload))).toEqual([{ v: 1, kind: 'table', reason: 'cannot read the jobs table mem: ENOENT: no such file' }]);
    await hub.send('a');
    expect(hub.runs().map((r) => r.job)).toEqual(['a']);
  });
});

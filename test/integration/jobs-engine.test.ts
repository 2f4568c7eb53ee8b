import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobsReply, RunView } from '../../src/shared/contract/jobs-engine-messages.js';
import { requestJobs, type JobsOp } from '../../src/cli/jobs-request.js';
import { startAgentProcess } from '../support/agent-process.js';
import { userUrl } from '../support/broker-users.js';
import { runCli } from '../support/cli-process.js';
import { Cleanup } from '../support/cleanup.js';
import { startTestHub, watch, type BrokerKind, type TestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const P = 'services/mqtt_job_listener';

/**
 * The action every agent offers: it appends "<job> <mode>" to its log, where mode is found in the
 * trigger payload or, down a chain, in the payload of the completion that triggered it; `process`
 * fails (exit 3) when the mode is "fail". `slow` does the same after `ms` (param MS, default 3000).
 */
const STEP = `const fs=require('fs');let p=process.env.PUSHFLEET_JOB_PAYLOAD||'';let mode='';
for(let i=0;i<5&&p;i++){try{const o=JSON.parse(p);if(o.mode){mode=o.mode;break}p=o.payload||''}catch{break}}
const ms=Number(process.env.PUSHFLEET_JOB_PARAM_MS||0);
const job=process.env.PUSHFLEET_JOB_NAME;
setTimeout(()=>{fs.appendFileSync(process.env.RAN,job+' '+mode+'\\n');console.log('did '+job);
if(mode==='fail'&&job==='process')process.exit(3)},ms)`;

type Row = Record<string, unknown>;

async function jobsHub(cleanup: Cleanup, kind: BrokerKind, rows: Row[]) {
  const dir = cleanup.tempDir('pushfleet-jobs-');
  const table = join(dir, 'jobs.yaml');
  writeFileSync(table, stringify(rows));
  const hub = await startTestHub(cleanup, kind, { engines: { jobs: { table, reloadSeconds: 0.3 } } });
  const operatorUrl = kind === 'mosquitto' ? hub.mqttUrl : await userUrl(hub.mqttUrl, 'op', 'operator');
  // Made before the agent starts: the broker reads new accounts from the users file a moment later.
  const sensorUrl = kind === 'mosquitto' ? undefined : await userUrl(hub.mqttUrl, 'sensor', 'client');
  const ran = join(dir, 'ran.log');
  writeFileSync(ran, '');
  await startAgentProcess(cleanup, {
    id: 'runner-1',
    mqttUrl: hub.mqttUrl,
    logLevel: 'info',
    env: { RAN: ran },
    actions: { step: { command: [process.execPath, '-e', STEP] } },
    jobs: { actions: ['step'], maxConcurrent: 4 },
  });
  const op = await mqtt.connectAsync(operatorUrl, { reconnectPeriod: 0 });
  cleanup.defer(() => op.endAsync(true));
  const completions = await watch(cleanup, operatorUrl, `${P}/#`);
  const ask = (o: JobsOp) => requestJobs(op, o, 10);
  // The agent announced itself (retained status, offering its actions) before it logged "online";
  // the hub hears that on its own connection, a moment after.
  await new Promise((r) => setTimeout(r, 300));
  return { hub, table, ran, op, operatorUrl, sensorUrl, completions, ask, dir };
}


type Completion = { run: string; job: string; status: string; reason: string; payload: string };
const parsed = (messages: { topic: string; payload: string }[], kind: 'job_complete' | 'job_failed', job: string): Completion[] =>
  messages.filter((m) => m.topic === `${P}/${kind}/${job}`).map((m) => JSON.parse(m.payload) as Completion);

async function runsOf(ask: (op: JobsOp) => Promise<JobsReply>, job?: string): Promise<RunView[]> {
  return (await ask({ op: 'runs', limit: 100, ...(job && { job }) })).runs ?? [];
}

const CHAIN: Row[] = [
  { job_name: 'fetch', mqtt_topic: 'lab/start', action: 'step' },
  { job_name: 'process', mqtt_topic: `${P}/job_complete/fetch`, action: 'step' },
  { job_name: 'report', mqtt_topic: `${P}/job_complete/process`, action: 'step' },
  { job_name: 'alert', mqtt_topic: `${P}/job_failed/process`, action: 'step' },
];

describe('jobs engine over a real broker with agent executors', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it.each(['aedes', 'mosquitto'] as const)('runs a three-job chain, and a failure mid-chain takes the failure branch (%s)', async (kind) => {
    const { ran, completions, ask } = await jobsHub(cleanup, kind, CHAIN);
    const trigger = async (mode: string) => {
      const reply = await ask({ op: 'trigger', job: 'fetch', payload: JSON.stringify({ mode }) });
      expect(reply.run).toMatchObject({ status: 'pending', topic: '' });
      return reply.run!;
    };
    await trigger('ok');
    await waitFor('report done', () => parsed(completions.messages, 'job_complete', 'report').length === 1);
    expect(readFileSync(ran, 'utf8')).toBe('fetch ok\nprocess ok\nreport ok\n');
    expect(parsed(completions.messages, 'job_complete', 'fetch')).toEqual([expect.objectContaining({ status: 'succeeded', payload: '{"mode":"ok"}' })]);
    expect(parsed(completions.messages, 'job_failed', 'process')).toEqual([]);

    await trigger('fail');
    await waitFor('alert and report done', () => parsed(completions.messages, 'job_complete', 'alert').length === 1 && parsed(completions.messages, 'job_complete', 'report').length === 2);
    const failed = parsed(completions.messages, 'job_failed', 'process');
    expect(failed).toEqual([expect.objectContaining({ job: 'process', status: 'failed', reason: expect.stringMatching(/3/) })]);
    expect(parsed(completions.messages, 'job_complete', 'alert')[0]).toMatchObject({ status: 'succeeded' });
    // The alert's trigger is the failure itself: its payload is process's completion.
    expect(JSON.parse(parsed(completions.messages, 'job_complete', 'alert')[0]!.payload)).toMatchObject({ run: failed[0]!.run, status: 'failed' });
    expect(readFileSync(ran, 'utf8').split('\n').filter(Boolean).sort()).toEqual(['alert fail', 'fetch fail', 'fetch ok', 'process fail', 'process ok', 'report fail', 'report ok']);
    // Each run once: no completion was published twice.
    const ids = completions.messages.filter((m) => m.topic.includes('/job_complete/')).map((m) => (JSON.parse(m.payload) as Completion).run);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('concurrency: forbid records a second trigger as a failed run; replace cancels the run under way and runs the new one', async () => {
    const slow = { action: 'step', params: { MS: { pattern: '[0-9]+', default: '2500' } } };
    const { completions, ask, sensorUrl } = await jobsHub(cleanup, 'aedes', [
      { job_name: 'solo', mqtt_topic: 'lab/solo', concurrency: 'forbid', ...slow },
      { job_name: 'swap', mqtt_topic: 'lab/swap', concurrency: 'replace', ...slow },
    ]);
    const sensor = await mqtt.connectAsync(sensorUrl!, { reconnectPeriod: 0 });
    cleanup.defer(() => sensor.endAsync(true));
    await sensor.publishAsync('lab/solo', '', { qos: 1 });
    await sensor.publishAsync('lab/swap', '', { qos: 1 });
    await waitFor('both running', async () => (await runsOf(ask)).filter((r) => r.status === 'running').length === 2);
    await sensor.publishAsync('lab/solo', '', { qos: 1 });
    await sensor.publishAsync('lab/swap', '', { qos: 1 });
    await waitFor('the second swap done', () => parsed(completions.messages, 'job_complete', 'swap').length === 2, 30_000);
    await waitFor('the first solo done', () => parsed(completions.messages, 'job_complete', 'solo').some((c) => c.status === 'succeeded'), 30_000);
    const [first, second] = (await runsOf(ask, 'solo')).reverse();
    expect(parsed(completions.messages, 'job_failed', 'solo')).toEqual([expect.objectContaining({ run: second!.id, reason: `skipped: run ${first!.id} still under way (concurrency: forbid)` })]);
    const swaps = (await runsOf(ask, 'swap')).reverse();
    expect(swaps.map((r) => [r.status, r.reason])).toEqual([
      ['cancelled', `replaced by run ${swaps[1]!.id}`],
      ['succeeded', expect.any(String)],
    ]);
    expect(parsed(completions.messages, 'job_complete', 'swap').map((c) => c.status)).toEqual(['cancelled', 'succeeded']);
  });

  it('reloads the table: added rows trigger, removed ones are unsubscribed; bad rows are reported beside good ones, which work', async () => {
    const { completions, ask, table, hub, op } = await jobsHub(cleanup, 'aedes', [
      { job_name: 'a', mqtt_topic: 'lab/a', action: 'step' },
      { job_name: 'own', mqtt_topic: 'pushfleet/#', action: 'step' },
      { job_name: 'Bad_Name', mqtt_topic: 'lab/x', action: 'step' },
    ]);
    const list = await ask({ op: 'list' });
    expect(list.rows!.map((r) => r.jobName)).toEqual(['a']);
    expect(list.errors!.map((e) => [e.line, e.reason.slice(0, 40)])).toEqual([
      [expect.any(Number), expect.stringMatching(/^mqtt_topic pushfleet\/# reaches pushfleet/)],
      [expect.any(Number), expect.stringMatching(/job_name/)],
    ]);
    // The hub account publishes on any topic: what matters is whether the engine still listens.
    const harness = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => harness.endAsync(true));
    await harness.publishAsync('lab/a', '', { qos: 1 });
    await waitFor('a ran', () => parsed(completions.messages, 'job_complete', 'a').length === 1);

    writeFileSync(table, stringify([{ job_name: 'b', mqtt_topic: 'lab/b/#', action: 'step' }, { job_name: 'c', mqtt_topic: 'lab/c' }]));
    await op.publishAsync(`${P}/refresh`, '', { qos: 1 });
    await waitFor('b in the table', async () => (await ask({ op: 'list' })).rows!.map((r) => r.jobName).join() === 'b');
    await harness.publishAsync('lab/a', '', { qos: 1 });
    await harness.publishAsync('lab/b/c/d', '', { qos: 1 });
    await waitFor('b ran', () => parsed(completions.messages, 'job_complete', 'b').length === 1);
    expect((await runsOf(ask)).map((r) => r.job)).toEqual(['b', 'a']);
    const errors = completions.messages.filter((m) => m.topic === `${P}/error`).map((m) => JSON.parse(m.payload) as Record<string, unknown>);
    expect(errors).toEqual([{ v: 1, kind: 'row', line: expect.any(Number), job: 'c', reason: expect.stringMatching(/action/) }]);
  });

  it('pushfleet jobs trigger, runs, show, logs and list from the CLI', async () => {
    const { operatorUrl, completions } = await jobsHub(cleanup, 'aedes', CHAIN.slice(0, 1));
    const flags = ['--mqtt-url', operatorUrl];
    const payload = join(cleanup.tempDir('pushfleet-jobs-payload-'), 'p.json');
    writeFileSync(payload, '{"mode":"cli"}');
    const triggered = await runCli(['jobs', 'trigger', 'fetch', '--payload', payload, '--json', ...flags]);
    expect(triggered.code, triggered.stderr).toBe(0);
    const run = JSON.parse(triggered.stdout) as RunView;
    expect(run).toMatchObject({ job: 'fetch', status: 'pending', payload: '{"mode":"cli"}' });
    await waitFor('fetch done', () => parsed(completions.messages, 'job_complete', 'fetch').length === 1);
    const shown = await runCli(['jobs', 'show', run.id, '--json', ...flags]);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: run.id, status: 'succeeded', agent: 'runner-1' });
    expect((await runCli(['jobs', 'logs', run.id, ...flags])).stdout).toContain('did fetch');
    expect((await runCli(['jobs', 'runs', '--job', 'fetch', ...flags])).stdout).toMatch(new RegExp(`${run.id}\\s+fetch\\s+succeeded`));
    expect((await runCli(['jobs', 'list', ...flags])).stdout).toMatch(/fetch\s+lab\/start\s+agent\s+allow\s+step/);
    const missing = await runCli(['jobs', 'show', '0123456789', ...flags]);
    expect([missing.code, missing.stderr.trim()]).toEqual([1, 'pushfleet: no run 0123456789: see "pushfleet jobs runs"']);
    const unknown = await runCli(['jobs', 'trigger', 'nope', ...flags]);
    expect([unknown.code, unknown.stderr.trim()]).toEqual([1, 'pushfleet: no job nope in the table: see "pushfleet jobs list"']);
  });
});

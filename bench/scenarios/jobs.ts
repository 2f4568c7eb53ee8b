/**
 * `jobs`: the jobs engine's own share of a run. The hub's pieces run in this process as startHub
 * wires them: the embedded aedes on the state database, the hub's in-process MQTT client and
 * publish-as-the-broker, the dispatcher, and a JobsEngine with the real run store; its executor is
 * an in-bench one that reports a run running at once and
 * succeeded a tick later, so what is timed is the engine and the broker, not a workload.
 * 1. trigger → executor start: one client publishes a trigger (QoS 1), one at a time; timed from
 *    the publish to the executor's start call.
 * 2. a 100-job chain: job i runs on `{prefix}/job_complete/job{i-1}`; timed from the first trigger
 *    to the last completion, per link.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { pino } from 'pino';
import { startEmbeddedBroker } from '../../src/hub/broker/embedded-broker.js';
import { TickBatch } from '../../src/hub/tick-batch.js';
import { connectMqtt, MqttConnectionConfig } from '../../src/shared/mqtt-connection.js';
import { Dispatcher } from '../../src/hub/engines/dispatcher.js';
import { systemClock } from '../../src/hub/engines/engine.js';
import { JobsConfig } from '../../src/hub/engines/jobs/config.js';
import { JobsEngine } from '../../src/hub/engines/jobs/jobs-engine.js';
import type { AgentRow, JobExecutor, Run, RunUpdate } from '../../src/hub/engines/jobs/model.js';
import { openStateDb } from '../../src/hub/state-db.js';
import { TopicContract } from '../../src/shared/contract/topic-table.js';
import { jobCompleteTopic } from '../../src/shared/contract/jobs-engine-messages.js';
import { hubKeyFor } from '../../test/support/signer.js';
import { Cleanup } from '../../test/support/cleanup.js';
import { startTestHub } from '../../test/support/test-hub.js';
import { AGENT_JOB_STATUS_ALL, agentStatusTopic } from '../../src/shared/topics.js';
import { freePort } from '../../test/support/ports.js';
import { waitFor } from '../../test/support/wait.js';
import { BenchProcess, progress } from '../support/processes.js';
import { percentile, round, type Figures, type Scenario } from '../scenario.js';

const PREFIX = 'services/mqtt_job_listener';
const TRIGGERS = 300;
const CHAIN = 100;
const CHAIN_ROUNDS = 3;
const AGENT_TRIGGERS = 30;
const AGENT_CHAIN = 20;

const row = (jobName: string, mqttTopic: string): AgentRow => ({ line: 2, jobName, mqttTopic, concurrency: 'allow', params: {}, executor: 'agent', action: 'bench', selector: {}, timeoutSeconds: 60 });

/** A plain client with Nagle off, as pushfleet's own clients have it: else its small writes wait ~40 ms for ACKs. */
async function benchClient(url: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  return client;
}

/** Starts nothing: records the start and ends the run on the next tick. */
class BenchExecutor implements JobExecutor {
  readonly kind = 'agent' as const;
  onStart: (run: Run) => void = () => undefined;
  async start(run: Run): Promise<void> {
    this.onStart(run);
  }
  watch(_run: Run, onUpdate: (u: RunUpdate) => void): () => void {
    const at = Date.now();
    onUpdate({ status: 'running', at, agent: 'bench' });
    const t = setImmediate(() => onUpdate({ status: 'succeeded', at: Date.now(), reason: 'exit code 0' }));
    return () => clearImmediate(t);
  }
  async stop(): Promise<void> {}
  async logs(): Promise<string> {
    return '';
  }
  async remove(): Promise<void> {}
}

async function measure(): Promise<Figures> {
  const cleanup = new Cleanup();
  try {
    const stateDir = mkdtempSync(join(tmpdir(), 'pushfleet-bench-jobs-'));
    cleanup.defer(() => rmSync(stateDir, { recursive: true, force: true }));
    const log = pino({ level: 'warn' });
    const db = openStateDb(stateDir);
    cleanup.defer(() => db.close());
    const batch = new TickBatch(db);
    const broker = await startEmbeddedBroker({ host: '127.0.0.1', port: await freePort(), state: { db, batch } }, log);
    cleanup.defer(() => broker.close());
    const mqttUrl = broker.url;

    const rows = [row('single', 'bench/trigger'), row('job0', 'bench/chain'), ...Array.from({ length: CHAIN - 1 }, (_, i) => row(`job${i + 1}`, jobCompleteTopic(PREFIX, `job${i}`)))];
    const client = await connectMqtt(MqttConnectionConfig.parse({ url: mqttUrl }), { stream: () => broker.connectInProcess() });
    cleanup.defer(() => client.endAsync(true));
    const executor = new BenchExecutor();
    const ctx = { publisher: { publish: (topic: string, payload: string, opts: { qos: 0 | 1 }) => broker.publish(topic, Buffer.from(payload), opts) }, db, clock: systemClock, log, contract: new TopicContract() };
    const engine = new JobsEngine(ctx, JobsConfig.parse({ table: 'bench', history: 100_000 }), {
      source: { location: 'bench', read: async (since) => (since === '1' ? 'unchanged' : { text: '', version: '1', format: 'yaml' }) },
      // The table's parsing is not what is timed here.
      parse: () => ({ rows, errors: [] }),
      executors: { agent: executor },
      logs: { put: async (run) => `bench:${run.id}`, get: async () => '', delete: async () => undefined },
    });
    const dispatcher = new Dispatcher(client, [engine], log);
    await dispatcher.start();
    cleanup.defer(() => dispatcher.stop());

    const sender = await benchClient(mqttUrl);
    cleanup.defer(() => sender.endAsync(true));
    progress(`jobs: ${TRIGGERS} triggers, one at a time`);
    const latencies: number[] = [];
    for (let i = 0; i < TRIGGERS; i++) {
      let startedAt = 0;
      executor.onStart = () => void (startedAt = performance.now());
      const sentAt = performance.now();
      await sender.publishAsync('bench/trigger', `{"n":${i}}`, { qos: 1 });
      await waitFor('the run started', () => startedAt > 0, 10_000);
      latencies.push(startedAt - sentAt);
    }
    executor.onStart = () => undefined;

    const watcher = await benchClient(mqttUrl);
    cleanup.defer(() => watcher.endAsync(true));
    let lastAt = 0;
    watcher.on('message', () => void (lastAt = performance.now()));
    await watcher.subscribeAsync(jobCompleteTopic(PREFIX, `job${CHAIN - 1}`), { qos: 1 });
    const chains: number[] = [];
    for (let r = 0; r < CHAIN_ROUNDS; r++) {
      lastAt = 0;
      const t0 = performance.now();
      await sender.publishAsync('bench/chain', '{}', { qos: 1 });
      await waitFor(`job${CHAIN - 1} completed`, () => lastAt > 0, 60_000);
      chains.push(lastAt - t0);
      progress(`chain round ${r + 1}: ${round(lastAt - t0, 0)} ms`);
    }
    const perLink = chains.map((ms) => ms / CHAIN);
    return {
      'trigger → executor start p50 (ms)': round(percentile(latencies, 50), 2),
      'trigger → executor start p99 (ms)': round(percentile(latencies, 99), 2),
      [`${CHAIN}-job chain, trigger → last completion (ms)`]: chains.map((c) => round(c, 0)).join(', '),
      'chain overhead per link, mean (ms)': round(perLink.reduce((a, b) => a + b, 0) / perLink.length, 2),
    };
  } finally {
    await cleanup.run();
  }
}

/**
 * The same through a whole hub (startTestHub: in-process, embedded aedes, signing on) and one real
 * agent process running the action `true`: trigger → the agent's run reported running, and a
 * chain of AGENT_CHAIN agent runs, per link (an agent spawns a process for each).
 */
async function measureWithAgent(): Promise<Figures> {
  const cleanup = new Cleanup();
  try {
    const dir = mkdtempSync(join(tmpdir(), 'pushfleet-bench-jobs-agent-'));
    cleanup.defer(() => rmSync(dir, { recursive: true, force: true }));
    const table = join(dir, 'jobs.yaml');
    const rows = [{ job_name: 'one', mqtt_topic: 'bench/one', action: 'noop' }, { job_name: 'link0', mqtt_topic: 'bench/chain', action: 'noop' }];
    for (let i = 1; i < AGENT_CHAIN; i++) rows.push({ job_name: `link${i}`, mqtt_topic: jobCompleteTopic(PREFIX, `link${i - 1}`), action: 'noop' });
    writeFileSync(table, stringify(rows));
    const hub = await startTestHub(cleanup, 'aedes', { engines: { jobs: { table, history: 100_000 } } });
    const agentFile = join(dir, 'agent.yaml');
    // Logged in as the bench's harness account, as the other benches' agents are.
    writeFileSync(agentFile, stringify({ id: 'bench-runner', mqtt: { url: hub.mqttUrl }, hubPublicKey: hubKeyFor(hub.mqttUrl), stateDir: join(dir, 'agent'), log: { level: 'warn' }, actions: { noop: { command: ['true'] } }, jobs: { actions: ['noop'], maxConcurrent: 4 } }));
    const agent = new BenchProcess(['agent', '--config', agentFile]);
    cleanup.defer(() => agent.stop());
    const client = await benchClient(hub.mqttUrl);
    cleanup.defer(() => client.endAsync(true));
    const running = new Map<string, number>();
    const completed = new Map<string, number>();
    let online = false;
    client.on('message', (topic, payload) => {
      const at = performance.now();
      if (topic === agentStatusTopic('bench-runner')) return void (online = payload.toString().includes('"online"'));
      if (topic.endsWith('/status') && payload.length && (JSON.parse(payload.toString()) as { state: string }).state === 'running') running.set(topic, at);
      else if (topic.startsWith(`${PREFIX}/job_complete/`)) completed.set((JSON.parse(payload.toString()) as { job: string }).job, at);
    });
    await client.subscribeAsync([AGENT_JOB_STATUS_ALL, `${PREFIX}/job_complete/+`, agentStatusTopic('bench-runner')], { qos: 1 });
    await waitFor(`the agent online\n${agent.tail()}`, () => online, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    progress(`jobs with an agent: ${AGENT_TRIGGERS} triggers one at a time, then ${AGENT_CHAIN}-run chains`);
    const toRunning: number[] = [];
    for (let i = 0; i < AGENT_TRIGGERS; i++) {
      running.clear();
      completed.delete('one');
      const t0 = performance.now();
      await client.publishAsync('bench/one', '', { qos: 1 });
      await waitFor('run one completed', () => completed.has('one'), 20_000);
      toRunning.push([...running.values()][0]! - t0);
    }
    const chains: number[] = [];
    for (let r = 0; r < CHAIN_ROUNDS; r++) {
      completed.clear();
      const t0 = performance.now();
      await client.publishAsync('bench/chain', '', { qos: 1 });
      await waitFor(`link${AGENT_CHAIN - 1} completed`, () => completed.get(`link${AGENT_CHAIN - 1}`), 120_000);
      chains.push(completed.get(`link${AGENT_CHAIN - 1}`)! - t0);
    }
    return {
      'trigger → agent run running p50 (ms)': round(percentile(toRunning, 50), 1),
      'trigger → agent run running p99 (ms)': round(percentile(toRunning, 99), 1),
      [`${AGENT_CHAIN}-run agent chain per link, mean (ms)`]: round(chains.reduce((a, b) => a + b, 0) / chains.length / AGENT_CHAIN, 1),
    };
  } finally {
    await cleanup.run();
  }
}

export const jobsScenarios: Scenario[] = [
  { name: 'jobs: trigger → start, and a 100-job chain (in-process hub, aedes, in-bench executor)', run: measure },
  { name: `jobs: trigger → agent run, and a ${AGENT_CHAIN}-run chain (in-process hub, aedes, one agent process)`, run: measureWithAgent },
];

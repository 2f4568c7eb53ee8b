/**
 * `agent-idle`: what an agent costs its machine while nothing happens. A hub process (embedded
 * broker) and one real `pushfleet agent` process following a bare git repo with one app; one
 * push is deployed first (so the update path has been loaded and run once), then the agent is left
 * alone and its RSS and CPU are sampled from /proc. The heartbeat runs every 5 s (the default
 * is 30 s), so the window holds two heartbeats and their host facts.
 *
 * `agent-idle: host facts`: what one heartbeat's host facts cost, read in this process; the
 * event loop (which also times orchestrator starts) waits for whatever part of it is synchronous.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { readHostFacts } from '../../agent/host-facts.js';
import { AppState, decode } from '../../src/shared/messages.js';
import { appStateTopic } from '../../src/shared/topics.js';
import { Cleanup } from '../../test/support/cleanup.js';
import { GitFixture } from '../../test/support/git-fixture.js';
import { githubPushPayload, postWebhook, signedRequest } from '../../test/support/push-payload.js';
import { waitFor } from '../../test/support/wait.js';
import { BENCH_SECRET, BenchProcess, cpuSeconds, mb, progress, rssBytes, startHubProcess } from '../support/processes.js';
import { percentile, round, type Figures, type Scenario } from '../scenario.js';

const AGENT = 'bench-idle';
const APP = 'web';
/** After the deploy: lets startup garbage be collected and the heap settle. */
const SETTLE_MS = 5000;
const SAMPLE_MS = 10_000;
const EVERY_MS = 100;

/** Memory only this process holds (Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup). */
function privateMemoryBytes(pid: number): number {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN);
  return (kb('Private_Clean') + kb('Private_Dirty')) * 1024;
}

async function agentIdle(withNode: boolean): Promise<Figures> {
  const cleanup = new Cleanup();
  try {
    const git = new GitFixture({ 'app.txt': 'v0\n' });
    cleanup.defer(() => git.remove());
    const hub = await startHubProcess(cleanup);
    const watcher = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => watcher.endAsync(true));
    const deployed = new Set<string>();
    watcher.on('message', (_topic, payload) => {
      const s = decode(AppState, payload);
      if (s.ok && s.value.state === 'deployed' && s.value.sha) deployed.add(s.value.sha);
    });
    await watcher.subscribeAsync(appStateTopic(AGENT, APP), { qos: 1 });

    const dir = mkdtempSync(join(tmpdir(), 'pushfleet-bench-idle-'));
    cleanup.defer(() => rmSync(dir, { recursive: true, force: true }));
    const config = join(dir, 'agent.yaml');
    const orchestrator = withNode ? { orchestrator: { actions: { TICK: { command: ['true'] } } } } : {};
    const app = { name: APP, repo: 'acme/web', branch: 'main', path: git.workdir(APP), remote: git.bare, restart: ['true'] };
    writeFileSync(config, stringify({ id: AGENT, hubPublicKey: hub.hubPublicKey, mqtt: { url: hub.mqttUrl }, stateDir: join(dir, 'state'), heartbeatSeconds: 5, log: { level: 'warn' }, apps: [app], ...orchestrator }));
    const agent = new BenchProcess(['agent', '--config', config], {}, (process.env.BENCH_AGENT_FLAGS ?? '').split(' ').filter(Boolean));
    cleanup.defer(() => agent.stop());

    const before = git.head();
    const sha = git.commit('one', { 'app.txt': 'v1\n' });
    const res = await postWebhook(hub.webhookUrl, signedRequest(BENCH_SECRET, 'push', githubPushPayload({ after: sha, before })));
    if (res.status !== 200) throw new Error(`webhook answered ${res.status}`);
    await waitFor(() => `agent deployed ${sha}\n${agent.tail()}`, () => deployed.has(sha) || (!agent.alive && Promise.reject(new Error(`agent exited\n${agent.tail()}`))), 30_000);
    progress(`deployed; idle for ${SETTLE_MS / 1000} s, then sampling for ${SAMPLE_MS / 1000} s`);
    await sleep(SETTLE_MS);

    const rss: number[] = [];
    const cpu0 = cpuSeconds(agent.pid);
    const t0 = performance.now();
    while (performance.now() - t0 < SAMPLE_MS) {
      rss.push(rssBytes(agent.pid));
      await sleep(EVERY_MS);
    }
    const cpuPercent = ((cpuSeconds(agent.pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100;
    const privateBytes = privateMemoryBytes(agent.pid);
    if (!agent.alive) throw new Error(`agent exited while idle\n${agent.tail()}`);
    return {
      'idle RSS p50 (MB)': mb(percentile(rss, 50)),
      'idle RSS max (MB)': mb(Math.max(...rss)),
      // RSS counts the node binary's pages (about 40 MB, shared with every node process on the host).
      'idle private memory (MB)': mb(privateBytes),
      'idle CPU (% of a core)': round(cpuPercent, 2),
      'heartbeat every (s)': 5,
    };
  } finally {
    await cleanup.run();
  }
}

async function hostFacts(): Promise<Figures> {
  await readHostFacts(); // warm-up: first imports and reads
  const wall: number[] = [];
  const blocked: number[] = [];
  for (let i = 0; i < 20; i++) {
    // Event-loop blocking: how late a timer due at once fires while the read is under way.
    let lateness = 0;
    const t0 = performance.now();
    const probe = new Promise<void>((r) => setImmediate(() => ((lateness = performance.now() - t0), r())));
    await readHostFacts();
    wall.push(performance.now() - t0);
    await probe;
    blocked.push(lateness);
  }
  return {
    'host facts read p50 (ms)': round(percentile(wall, 50), 2),
    'host facts read max (ms)': round(Math.max(...wall), 2),
    'event loop held by it p50 (ms)': round(percentile(blocked, 50), 2),
    'event loop held by it max (ms)': round(Math.max(...blocked), 2),
  };
}

export const agentIdleScenarios: Scenario[] = [
  { name: 'agent-idle: host facts for one heartbeat', run: hostFacts },
  { name: 'agent-idle: one app', run: () => agentIdle(false) },
  { name: 'agent-idle: one app and an orchestrator node', run: () => agentIdle(true) },
];

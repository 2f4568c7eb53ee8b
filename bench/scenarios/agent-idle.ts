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
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { readHostFacts } from '../../agent/host-facts.js';
import { Cleanup } from '../../test/support/cleanup.js';
import { GitFixture } from '../../test/support/git-fixture.js';
import { githubPushPayload, postWebhook, signedRequest } from '../../test/support/push-payload.js';
import { waitFor } from '../../test/support/wait.js';
import { BENCH_SECRET, BenchProcess, cpuSeconds, mb, progress, startHubProcess } from '../support/processes.js';
import { percentile, round, type Figures, type Scenario } from '../scenario.js';

const AGENT = 'bench-idle';
const APP = 'web';
/**
 * After the deploy, before sampling: V8 gives back its young generation (up to 32 MB grown during
 * start-up and the update) only after some 20 s with little allocation. An agent idles for hours.
 */
const SETTLE_MS = 30_000;
const SAMPLE_MS = 10_000;
const EVERY_MS = 100;

/**
 * A process's resident memory from /proc/<pid>/smaps_rollup: all of it (RSS), and what only it
 * holds (Private_Clean + Private_Dirty). RSS includes the node binary's pages, about 40 MB, shared
 * with every node process on the host.
 */
function memory(pid: number): { rss: number; private: number } {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN) * 1024;
  return { rss: kb('Rss'), private: kb('Private_Clean') + kb('Private_Dirty') };
}

async function agentIdle(withNode: boolean): Promise<Figures> {
  const cleanup = new Cleanup();
  try {
    const git = new GitFixture({ 'app.txt': 'v0\n' });
    cleanup.defer(() => git.remove());
    const hub = await startHubProcess(cleanup);
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
    // Its working copy at the pushed commit: the update ran (the settling time covers its restart step).
    // Checked out detached, the working copy's .git/HEAD is the commit itself.
    const checkedOut = () => existsSync(join(app.path, '.git', 'HEAD')) && readFileSync(join(app.path, '.git', 'HEAD'), 'utf8').trim() === sha;
    await waitFor(() => `agent checked out ${sha}\n${agent.tail()}`, () => checkedOut() || (!agent.alive && Promise.reject(new Error(`agent exited\n${agent.tail()}`))), 30_000);
    progress(`deployed; idle for ${SETTLE_MS / 1000} s, then sampling for ${SAMPLE_MS / 1000} s`);
    await sleep(SETTLE_MS);

    const samples: { rss: number; private: number }[] = [];
    const cpu0 = cpuSeconds(agent.pid);
    const t0 = performance.now();
    while (performance.now() - t0 < SAMPLE_MS) {
      samples.push(memory(agent.pid));
      await sleep(EVERY_MS);
    }
    const cpuPercent = ((cpuSeconds(agent.pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100;
    if (!agent.alive) throw new Error(`agent exited while idle\n${agent.tail()}`);
    return {
      'idle RSS p50 (MB)': mb(percentile(samples.map((m) => m.rss), 50)),
      'idle RSS max (MB)': mb(Math.max(...samples.map((m) => m.rss))),
      'idle private memory p50 (MB)': mb(percentile(samples.map((m) => m.private), 50)),
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

/**
 * `agent-idle`: what an agent costs its machine while nothing happens. A hub process (embedded
 * broker) and one real `pushfleet agent` process following a bare git repo with one app; one
 * push is deployed first (so the update path has been loaded and run once), then the agent is left
 * alone and its RSS and CPU are sampled from /proc, with the memory of the process tree it keeps
 * (its spare shells). The heartbeat runs every 5 s (the default is 30 s), so the window holds two
 * heartbeats and their host facts. `with a URL health check`: the app's health check is a URL,
 * probed at the deploy (what an agent loads for it, it keeps).
 *
 * `agent-idle: host facts`: what one heartbeat's host facts cost, read in this process; the
 * event loop (which also times orchestrator starts) waits for whatever part of it is synchronous.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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
 * holds (Private_Clean + Private_Dirty). RSS includes the node binary's own pages (about 35 MB here:
 * its code, read-only data and symbol tables), shared with every node process on the host.
 */
function memory(pid: number): { rss: number; private: number } {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN) * 1024;
  return { rss: kb('Rss'), private: kb('Private_Clean') + kb('Private_Dirty') };
}

/** The processes `pid` keeps, itself first: its pre-forked spare shells (agent/spare-process.ts) are its children. */
function processTree(pid: number): number[] {
  const children = (p: number): number[] => {
    try {
      return readdirSync(`/proc/${p}/task`).flatMap((tid) => readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
    } catch {
      return []; // gone meanwhile
    }
  };
  return [pid, ...children(pid).flatMap(processTree)];
}

/**
 * The whole tree's memory: RSS summed (counts the pages its processes share, libc and sh, once per
 * process), and private memory summed (what the tree alone costs the machine).
 */
function treeMemory(pid: number): { rss: number; private: number; processes: number } {
  const each = processTree(pid).flatMap((p) => {
    try {
      return [memory(p)];
    } catch {
      return [];
    }
  });
  return { rss: each.reduce((n, m) => n + m.rss, 0), private: each.reduce((n, m) => n + m.private, 0), processes: each.length };
}

/** A health endpoint that always answers 200, closed at cleanup. */
async function healthyApp(cleanup: Cleanup): Promise<string> {
  const server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.defer(() => new Promise((r) => server.close(r)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
}

/** `node`: also an orchestrator node; `health`: the app's health check is a URL (an HTTP server here that answers 200). */
async function agentIdle(opts: { node?: boolean; health?: boolean }): Promise<Figures> {
  const cleanup = new Cleanup();
  try {
    const git = new GitFixture({ 'app.txt': 'v0\n' });
    cleanup.defer(() => git.remove());
    const hub = await startHubProcess(cleanup);
    const dir = mkdtempSync(join(tmpdir(), 'pushfleet-bench-idle-'));
    cleanup.defer(() => rmSync(dir, { recursive: true, force: true }));
    const config = join(dir, 'agent.yaml');
    const orchestrator = opts.node ? { orchestrator: { actions: { TICK: { command: ['true'] } } } } : {};
    const app = { name: APP, repo: 'acme/web', branch: 'main', path: git.workdir(APP), remote: git.bare, restart: ['true'], ...(opts.health && { health: { url: await healthyApp(cleanup) } }) };
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
    const trees: { rss: number; private: number; processes: number }[] = [];
    const cpu0 = cpuSeconds(agent.pid);
    const t0 = performance.now();
    while (performance.now() - t0 < SAMPLE_MS) {
      samples.push(memory(agent.pid));
      trees.push(treeMemory(agent.pid));
      await sleep(EVERY_MS);
    }
    const cpuPercent = ((cpuSeconds(agent.pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100;
    if (!agent.alive) throw new Error(`agent exited while idle\n${agent.tail()}`);
    return {
      'idle RSS p50 (MB)': mb(percentile(samples.map((m) => m.rss), 50)),
      'idle RSS max (MB)': mb(Math.max(...samples.map((m) => m.rss))),
      'idle private memory p50 (MB)': mb(percentile(samples.map((m) => m.private), 50)),
      'idle process tree: processes': Math.max(...trees.map((t) => t.processes)),
      'idle process tree RSS p50 (MB)': mb(percentile(trees.map((t) => t.rss), 50)),
      'idle process tree private memory p50 (MB)': mb(percentile(trees.map((t) => t.private), 50)),
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
  { name: 'agent-idle: one app', run: () => agentIdle({}) },
  { name: 'agent-idle: one app with a URL health check', run: () => agentIdle({ health: true }) },
  { name: 'agent-idle: one app and an orchestrator node', run: () => agentIdle({ node: true }) },
];

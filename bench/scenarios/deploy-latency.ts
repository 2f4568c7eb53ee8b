/**
 * `deploy-latency`: the whole loop with real parts. A hub process (embedded broker), one agent
 * process following a real bare git repo, a cheap restart command; each round commits, POSTs the
 * signed push and times POST → the agent's retained state `deployed` at that SHA.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { AgentStatus, AppState, decode } from '../../src/shared/messages.js';
import { agentStatusTopic, appStateTopic } from '../../src/shared/topics.js';
import { Cleanup } from '../../test/support/cleanup.js';
import { GitFixture } from '../../test/support/git-fixture.js';
import { githubPushPayload, postWebhook, signedRequest } from '../../test/support/push-payload.js';
import { waitFor } from '../../test/support/wait.js';
import { BENCH_SECRET, BenchProcess, progress, startHubProcess } from '../support/processes.js';
import { percentile, round, type Figures, type Scenario } from '../scenario.js';

const ROUNDS = 200;
const AGENT = 'bench-agent';
const APP = 'web';
const ROUND_TIMEOUT_MS = 20_000;

type Deployed = { at: number; state: AppState };

async function deployLatency(): Promise<Figures> {
  const cleanup = new Cleanup();
  try {
    const git = new GitFixture({ 'app.txt': 'v0\n' });
    cleanup.defer(() => git.remove());
    const hub = await startHubProcess(cleanup);

    // Every state the agent reports, keyed by the SHA it reached, stamped on arrival.
    const watcher = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => watcher.endAsync(true));
    const deployed = new Map<string, Deployed>();
    const failures: string[] = [];
    let online = false;
    watcher.on('message', (topic, payload) => {
      const at = performance.now();
      if (topic === agentStatusTopic(AGENT)) {
        const s = decode(AgentStatus, payload);
        online = s.ok && s.value.state === 'online';
        return;
      }
      const s = decode(AppState, payload);
      if (!s.ok) return;
      if (s.value.state === 'deployed' && s.value.sha && !deployed.has(s.value.sha)) deployed.set(s.value.sha, { at, state: s.value });
      if (s.value.state === 'failed' || s.value.state === 'rolled-back') failures.push(`${s.value.state} at ${s.value.targetSha}: ${JSON.stringify(s.value.lastError)}`);
    });
    await watcher.subscribeAsync([appStateTopic(AGENT, APP), agentStatusTopic(AGENT)], { qos: 1 });

    const agentDir = mkdtempSync(join(tmpdir(), 'pushfleet-bench-agent-'));
    cleanup.defer(() => rmSync(agentDir, { recursive: true, force: true }));
    const config = join(agentDir, 'agent.yaml');
    writeFileSync(
      config,
      stringify({
        id: AGENT,
        hubPublicKey: hub.hubPublicKey,
        mqtt: { url: hub.mqttUrl },
        heartbeatSeconds: 60,
        log: { level: 'warn' },
        apps: [{ name: APP, repo: 'acme/web', branch: 'main', path: git.workdir(APP), remote: git.bare, restart: ['true'] }],
      }),
    );
    const agent = new BenchProcess(['agent', '--config', config]);
    cleanup.defer(() => agent.stop());
    await waitFor(() => `agent online\n${agent.tail()}`, () => online || (!agent.alive && Promise.reject(new Error(`agent exited\n${agent.tail()}`))), 20_000);

    let before = git.head();
    /** One round: commit, POST, wait for `deployed` at the new SHA; returns ms from POST sent. */
    const round1 = async (i: number): Promise<Deployed & { ms: number }> => {
      const sha = git.commit(`round ${i}`, { 'app.txt': `v${i}\n` });
      const req = signedRequest(BENCH_SECRET, 'push', githubPushPayload({ after: sha, before }));
      before = sha;
      const sent = performance.now();
      const res = await postWebhook(hub.webhookUrl, req);
      if (res.status !== 200) throw new Error(`round ${i}: webhook answered ${res.status} ${JSON.stringify(res.body)}`);
      const done = await waitFor(
        () => `round ${i}: state deployed at ${sha}; failures: ${failures.slice(-3).join('; ')}\n${agent.tail()}`,
        () => deployed.get(sha) ?? (failures.length > 0 && Promise.reject(new Error(`round ${i}: ${failures.at(-1)}`))),
        ROUND_TIMEOUT_MS,
      );
      return { ...done, ms: done.at - sent };
    };

    // The first deploy clones the working copy: warm-up, not measured.
    progress(`deploy-latency: warm-up (first deploy clones), then ${ROUNDS} rounds`);
    await round1(0);
    const latencies: number[] = [];
    const steps = { fetch: [] as number[], checkout: [] as number[], restart: [] as number[], total: [] as number[] };
    const t0 = performance.now();
    for (let i = 1; i <= ROUNDS; i++) {
      const r = await round1(i);
      latencies.push(r.ms);
      for (const k of Object.keys(steps) as (keyof typeof steps)[]) {
        const d = r.state.durations[k];
        if (d !== undefined) steps[k].push(d);
      }
      if (i % 50 === 0) progress(`deploy-latency: ${i}/${ROUNDS}, p50 so far ${round(percentile(latencies, 50), 1)} ms`);
    }
    const mean = (xs: number[]) => (xs.length ? round(xs.reduce((a, b) => a + b, 0) / xs.length, 1) : 'n/a');
    return {
      rounds: ROUNDS,
      'POST → deployed p50 (ms)': round(percentile(latencies, 50), 1),
      'POST → deployed p99 (ms)': round(percentile(latencies, 99), 1),
      'POST → deployed max (ms)': round(Math.max(...latencies), 1),
      'POST → deployed mean (ms)': mean(latencies),
      'agent step mean fetch (ms)': mean(steps.fetch),
      'agent step mean checkout (ms)': mean(steps.checkout),
      'agent step mean restart (ms)': mean(steps.restart),
      'agent step mean total (ms)': mean(steps.total),
      'wall time incl. commits (s)': round((performance.now() - t0) / 1000, 1),
    };
  } finally {
    await cleanup.run();
  }
}

export const deployLatencyScenarios: Scenario[] = [{ name: 'deploy-latency', run: deployLatency }];

/**
 * `deploy-latency`: push → app restarted, pushfleet against a shell hook. pushfleet: a hub process
 * (embedded broker) and one agent process following a real bare git repo. The reference: a
 * minimal HTTP hook running the agent's git work as a plain script (bench/support/script-hook.ts).
 * Both run the same restart command, which appends the SHA to a file the bench watches: each
 * round commits, POSTs the signed push and times POST → restarted, the two sides alternating
 * (which goes first swaps every round) so drifting machine load hits both alike. pushfleet is
 * also timed to its retained state `deployed` (after the journal recorded the restart).
 * DEPLOY_LATENCY_ROUNDS sets the rounds per side (default 200).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { AgentStatus, AppState, decode } from '../../src/shared/messages.js';
import { agentStatusTopic, appStateTopic, headTopic } from '../../src/shared/topics.js';
import { Cleanup } from '../../test/support/cleanup.js';
import { GitFixture } from '../../test/support/git-fixture.js';
import { freePort } from '../../test/support/ports.js';
import { githubPushPayload, postWebhook, signedRequest } from '../../test/support/push-payload.js';
import { waitFor } from '../../test/support/wait.js';
import { BENCH_SECRET, BenchProcess, progress, startHubProcess } from '../support/processes.js';
import { RestartMarks } from '../support/restart-marks.js';
import { startScriptHook } from '../support/script-hook.js';
import { percentile, round, type Figures, type Scenario } from '../scenario.js';

const ROUNDS = Number(process.env.DEPLOY_LATENCY_ROUNDS ?? 200);
const AGENT = 'bench-agent';
const APP = 'web';
const ROUND_TIMEOUT_MS = 20_000;
/** The restart both sides run: as cheap as a restart gets, and it tells the bench when it ran. */
const RESTART = ['sh', '-c', 'echo "$PUSHFLEET_SHA" >> "$RESTART_LOG"'];

type Deployed = { at: number; state: AppState };
type Round = { restarted: number; answered: number; head?: number; deployed?: number; state?: AppState };

async function deployLatency(): Promise<Figures> {
  const cleanup = new Cleanup();
  try {
    const git = new GitFixture({ 'app.txt': 'v0\n' });
    cleanup.defer(() => git.remove());
    const dir = mkdtempSync(join(tmpdir(), 'pushfleet-bench-deploy-'));
    cleanup.defer(() => rmSync(dir, { recursive: true, force: true }));
    const hub = await startHubProcess(cleanup);

    // Every state the agent reports, keyed by the SHA it reached, stamped on arrival.
    const watcher = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => watcher.endAsync(true));
    const deployed = new Map<string, Deployed>();
    /** When the hub's signed retained head for each SHA reached a subscriber (the agent gets it then too). */
    const heads = new Map<string, number>();
    const failures: string[] = [];
    let online = false;
    const HEAD = headTopic('acme/web', 'refs/heads/main');
    watcher.on('message', (topic, payload) => {
      const at = performance.now();
      if (topic === HEAD) {
        // A signed envelope around the push (src/shared/signing/envelope.ts).
        const sha = /\\"after\\":\\"([0-9a-f]{40})\\"/.exec(payload.toString('utf8'))?.[1];
        if (sha && !heads.has(sha)) heads.set(sha, at);
        return;
      }
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
    await watcher.subscribeAsync([appStateTopic(AGENT, APP), agentStatusTopic(AGENT), HEAD], { qos: 1 });

    const agentMarks = new RestartMarks(join(dir, 'restarted-agent'));
    cleanup.defer(() => agentMarks.close());
    const config = join(dir, 'agent.yaml');
    writeFileSync(
      config,
      stringify({
        id: AGENT,
        hubPublicKey: hub.hubPublicKey,
        stateDir: join(dir, 'agent-state'),
        mqtt: { url: hub.mqttUrl },
        heartbeatSeconds: 60,
        log: { level: 'warn' },
        apps: [{ name: APP, repo: 'acme/web', branch: 'main', path: git.workdir(APP), remote: git.bare, restart: RESTART, env: { RESTART_LOG: agentMarks.path } }],
      }),
    );
    const agent = new BenchProcess(['agent', '--config', config]);
    cleanup.defer(() => agent.stop());
    await waitFor(() => `agent online\n${agent.tail()}`, () => online || (!agent.alive && Promise.reject(new Error(`agent exited\n${agent.tail()}`))), 20_000);

    // The reference: its working copy cloned once, as a hook's would be.
    const hookMarks = new RestartMarks(join(dir, 'restarted-hook'));
    cleanup.defer(() => hookMarks.close());
    const hookWorkdir = git.workdir('hook');
    execFileSync('git', ['clone', '--no-checkout', '--quiet', git.bare, hookWorkdir]);
    const hook = await startScriptHook({ dir, port: await freePort(), secret: BENCH_SECRET, workdir: hookWorkdir, remote: git.bare, restart: RESTART, env: { RESTART_LOG: hookMarks.path } });
    cleanup.defer(() => hook.close());

    let before = git.head();
    const push = async (url: string, i: number): Promise<{ sha: string; sent: number; answered: number }> => {
      const sha = git.commit(`round ${i}`, { 'app.txt': `v${i}\n` });
      const req = signedRequest(BENCH_SECRET, 'push', githubPushPayload({ after: sha, before }));
      before = sha;
      const sent = performance.now();
      const res = await postWebhook(url, req);
      if (res.status !== 200) throw new Error(`round ${i}: ${url} answered ${res.status} ${JSON.stringify(res.body)}`);
      return { sha, sent, answered: performance.now() - sent };
    };
    const restartedAt = (marks: RestartMarks, sha: string, what: () => string) => waitFor(what, () => marks.at(sha), ROUND_TIMEOUT_MS);

    const pushfleetRound = async (i: number): Promise<Round> => {
      const { sha, sent, answered } = await push(hub.webhookUrl, i);
      const what = () => `round ${i}: agent restarted at ${sha}; failures: ${failures.slice(-3).join('; ')}\n${agent.tail()}`;
      const restarted = await restartedAt(agentMarks, sha, what);
      const done = await waitFor(what, () => deployed.get(sha) ?? (failures.length > 0 && Promise.reject(new Error(`round ${i}: ${failures.at(-1)}`))), ROUND_TIMEOUT_MS);
      return { restarted: restarted - sent, answered, head: heads.get(sha)! - sent, deployed: done.at - sent, state: done.state };
    };
    const hookRound = async (i: number): Promise<Round> => {
      const { sha, sent, answered } = await push(hook.url, i);
      const restarted = await restartedAt(hookMarks, sha, () => `round ${i}: hook restarted at ${sha}`);
      await hook.finished(sha);
      return { restarted: restarted - sent, answered };
    };

    // The first deploy clones the agent's working copy: warm-up, not measured.
    progress(`deploy-latency: warm-up, then ${ROUNDS} rounds per side, alternating`);
    await pushfleetRound(0);
    await hookRound(0);
    const pf: Round[] = [];
    const sh: Round[] = [];
    const t0 = performance.now();
    for (let i = 1; i <= ROUNDS; i++) {
      if (i % 2) {
        pf.push(await pushfleetRound(2 * i));
        sh.push(await hookRound(2 * i + 1));
      } else {
        sh.push(await hookRound(2 * i));
        pf.push(await pushfleetRound(2 * i + 1));
      }
      if (i % 50 === 0) progress(`deploy-latency: ${i}/${ROUNDS}, p50 so far pushfleet ${round(percentile(pf.map((r) => r.restarted), 50), 1)} ms, script ${round(percentile(sh.map((r) => r.restarted), 50), 1)} ms`);
    }
    const p = (rs: Round[], k: 'restarted' | 'answered' | 'head' | 'deployed', q: number) => round(percentile(rs.map((r) => r[k]!), q), 1);
    const mean = (xs: number[]) => (xs.length ? round(xs.reduce((a, b) => a + b, 0) / xs.length, 1) : 'n/a');
    const step = (k: 'fetch' | 'checkout' | 'restart' | 'total') => mean(pf.flatMap((r) => r.state?.durations[k] ?? []));
    return {
      'rounds per side': ROUNDS,
      'pushfleet POST → restarted p50 (ms)': p(pf, 'restarted', 50),
      'pushfleet POST → restarted p99 (ms)': p(pf, 'restarted', 99),
      'script hook POST → restarted p50 (ms)': p(sh, 'restarted', 50),
      'script hook POST → restarted p99 (ms)': p(sh, 'restarted', 99),
      'ratio p50 (pushfleet / script)': round(p(pf, 'restarted', 50) / p(sh, 'restarted', 50), 2),
      'ratio p99 (pushfleet / script)': round(p(pf, 'restarted', 99) / p(sh, 'restarted', 99), 2),
      'pushfleet POST → state deployed p50 (ms)': p(pf, 'deployed', 50),
      'pushfleet POST → state deployed p99 (ms)': p(pf, 'deployed', 99),
      'pushfleet webhook answer p50 (ms)': p(pf, 'answered', 50),
      'pushfleet POST → signed head out p50 (ms)': p(pf, 'head', 50),
      'script hook answer p50 (ms)': p(sh, 'answered', 50),
      'agent step mean fetch (ms)': step('fetch'),
      'agent step mean checkout (ms)': step('checkout'),
      'agent step mean restart (ms)': step('restart'),
      'agent step mean total (ms)': step('total'),
      'wall time incl. commits (s)': round((performance.now() - t0) / 1000, 1),
    };
  } finally {
    await cleanup.run();
  }
}

export const deployLatencyScenarios: Scenario[] = [{ name: 'deploy-latency', run: deployLatency }];

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppState, decode } from '../../src/shared/messages.js';
import { RolloutSnapshot } from '../../src/shared/contract/rollout-messages.js';
import { appStateTopic, ROLLOUT_STATE_ALL, rolloutId } from '../../src/shared/topics.js';
import { rolloutWebApp, startAgentProcess } from '../support/agent-process.js';
import { linesOf } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';
import type { CliProcess } from '../support/cli-process.js';
import { GitFixture } from '../support/git-fixture.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { BROKERS, SECRET, startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const HOSTS = ['h1', 'h2', 'h3'];
const VICTIM = 'h2';
/** Long enough that the old code (a redo that never gives the slot back) shows as timed-out within the test. */
const HOST_TIMEOUT = 25;

/** Logs "{agent} {sha}" when it starts; on the victim host it then takes 4 s, time enough to kill the agent. */
const UPDATE = [
  process.execPath,
  '-e',
  `require('fs').appendFileSync(process.env.UPDATE_LOG, process.env.PUSHFLEET_AGENT + ' ' + process.env.PUSHFLEET_SHA + '\\n');
   if (process.env.SLOW === '1') setTimeout(() => {}, 4000);`,
];
/** Logs "{agent} {start ms} {end ms}" around a 300 ms restart, so the test sees whether two hosts' restarts overlapped. */
const RESTART = [process.execPath, '-e', `const t = Date.now(); setTimeout(() => require('fs').appendFileSync(process.env.RESTART_LOG, [process.env.PUSHFLEET_AGENT, t, Date.now()].join(' ') + '\\n'), 300);`];

const hostOf = (s: RolloutSnapshot | undefined, agent: string) => s?.hosts.find((h) => h.agent === agent);

describe.each(BROKERS)('a rollout host killed -9 while it holds its grant, over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function fleet(policy: Record<string, unknown>, opts: { cloned?: boolean } = {}) {
    const git = new GitFixture({ 'app.txt': 'v0\n', 'health.txt': 'healthy\n' });
    cleanup.defer(() => git.remove());
    const base = git.head();
    if (opts.cloned) for (const h of HOSTS) execFileSync('git', ['clone', '--quiet', git.bare, git.workdir(h)]);
    const updateLog = join(git.root, 'update.log');
    const restartLog = join(git.root, 'restart.log');
    const hub = await startTestHub(cleanup, broker, { engines: { rollouts: { defaults: policy } } });
    const rollouts = await watch(cleanup, hub.mqttUrl, ROLLOUT_STATE_ALL);
    const apps = await watch(cleanup, hub.mqttUrl, appStateTopic(VICTIM, 'web'));
    const stateDir = cleanup.tempDir('pushfleet-victim-state-');
    const app = (id: string) =>
      rolloutWebApp(git, id, {
        update: [UPDATE],
        restart: RESTART,
        health: { command: ['grep', '-qx', 'healthy', 'health.txt'], timeout: 2, interval: 0.2 },
        env: { UPDATE_LOG: updateLog, RESTART_LOG: restartLog, SLOW: id === VICTIM ? '1' : '0' },
      });
    const start = (id: string) => startAgentProcess(cleanup, { id, mqttUrl: hub.mqttUrl, apps: [app(id)], labels: { env: 'production' }, logLevel: 'info', ...(id === VICTIM && { stateDir }) });
    const agents = new Map<string, CliProcess>();
    for (const id of HOSTS) agents.set(id, await start(id));

    const sha = git.commit('v1', { 'app.txt': 'v1\n' });
    const id = rolloutId('web', 'production', sha);
    expect((await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: sha, before: base })))).status).toBe(200);
    const snapshots = () =>
      rollouts.messages.filter((m) => m.topic === `pushfleet/rollouts/${id}/state` && m.payload).flatMap((m) => {
        const d = decode(RolloutSnapshot, m.payload);
        return d.ok ? [d.value] : [];
      });
    const until = (what: string, ok: (s: RolloutSnapshot) => boolean, timeoutMs = 60_000) =>
      waitFor(() => `rollout ${id}: ${what}; last: ${JSON.stringify(snapshots().at(-1), null, 1)}`, () => {
        const s = snapshots().at(-1);
        return s && ok(s) ? s : undefined;
      }, timeoutMs);
    const victimStates = (from: number) =>
      apps.messages.slice(from).flatMap((m) => {
        const d = decode(AppState, m.payload);
        return d.ok ? [d.value] : [];
      });
    /** Kills the victim in its update command, which runs only once its grant came; returns how many of its app states came before. */
    const killVictimWhileGranted = async () => {
      await waitFor('the victim running its update command', () => linesOf(updateLog).includes(`${VICTIM} ${sha}`));
      // The retained snapshot is paced (snapshotIntervalMs): it says so within that, not at once.
      await until('the victim counted as updating', (s) => hostOf(s, VICTIM)?.state === 'updating', 5000);
      await agents.get(VICTIM)!.stop('SIGKILL');
      return apps.messages.length;
    };
    return { git, base, sha, updateLog, restartLog, snapshots, until, victimStates, killVictimWhileGranted, start: () => start(VICTIM) };
  }

  it('takes its grant back on restart, redoes the update under it and is counted as succeeded; one host at a time throughout', async () => {
    const { git, sha, updateLog, restartLog, snapshots, until, victimStates, killVictimWhileGranted, start } = await fleet({ batchSize: 1, canary: 0, maxUnavailable: 1, hostTimeout: HOST_TIMEOUT });
    const seenBeforeRestart = await killVictimWhileGranted();
    await start();

    const ended = await until('ended', (s) => ['succeeded', 'failed', 'aborted'].includes(s.status));
    expect(ended.status).toBe('succeeded');
    expect(hostOf(ended, VICTIM)).toMatchObject({ state: 'succeeded', error: null });
    expect(ended.hosts.map((h) => h.state)).toEqual(HOSTS.map(() => 'succeeded'));
    for (const h of HOSTS) expect(git.headOf(git.workdir(h))).toBe(sha);

    // The victim redid its update after the restart (twice in the log), and said deployed only after it.
    expect(linesOf(updateLog).filter((l) => l === `${VICTIM} ${sha}`)).toHaveLength(2);
    expect(victimStates(seenBeforeRestart).find((s) => s.state === 'deployed' && s.sha === sha)).toMatchObject({ interrupted: { step: 'update', action: 'redo' } });

    // Never more than the batch size at once: in what the hub said, and in what the hosts did.
    expect(Math.max(...snapshots().map((s) => s.hosts.filter((h) => h.state === 'updating').length))).toBe(1);
    const restarts = linesOf(restartLog).map((l) => l.split(' ').slice(1).map(Number) as [number, number]);
    expect(restarts).toHaveLength(HOSTS.length);
    restarts.sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < restarts.length; i++) expect(restarts[i]![0]).toBeGreaterThanOrEqual(restarts[i - 1]![1]);
    // The victim started once, and nobody started while it held the slot across its restart.
    const victimStarted = Date.parse(hostOf(ended, VICTIM)!.startedAt!);
    const victimEnded = Date.parse(hostOf(ended, VICTIM)!.endedAt!);
    for (const h of ended.hosts.filter((x) => x.agent !== VICTIM)) {
      const s = Date.parse(h.startedAt!);
      expect(s < victimStarted || s >= victimEnded).toBe(true);
    }
  });

  it('does not deploy without the grant once the hub took it back: goes back to the previous SHA and stays timed-out', async () => {
    const { git, base, sha, snapshots, until, victimStates, killVictimWhileGranted, start } = await fleet({ batchSize: 1, canary: 0, maxUnavailable: 3, failureThreshold: 3, hostTimeout: 8 }, { cloned: true });
    const seenBeforeRestart = await killVictimWhileGranted();
    await until('the victim timed out', (s) => hostOf(s, VICTIM)?.state === 'timed-out');
    await start();

    const back = await waitFor('the victim back on the previous SHA', () => victimStates(seenBeforeRestart).find((s) => s.state === 'rolled-back'));
    expect(back).toMatchObject({ sha: base, targetSha: sha, lastError: { message: expect.stringMatching(/no longer counts this host/) } });
    expect(git.headOf(git.workdir(VICTIM))).toBe(base);
    expect(victimStates(seenBeforeRestart).some((s) => s.state === 'deployed' && s.sha === sha)).toBe(false);
    const ended = await until('ended', (s) => s.status === 'failed');
    expect(Object.fromEntries(ended.hosts.map((h) => [h.agent, h.state]))).toEqual(Object.fromEntries(HOSTS.map((h) => [h, h === VICTIM ? 'timed-out' : 'succeeded'])));
    expect(Math.max(...snapshots().map((s) => s.hosts.filter((h) => h.state === 'updating').length))).toBe(1);
  });
});

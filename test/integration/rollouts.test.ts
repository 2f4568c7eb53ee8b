import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decode } from '../../src/shared/messages.js';
import { RolloutSnapshot, type RolloutHostState } from '../../src/shared/contract/rollout-messages.js';
import { ROLLOUT_STATE_ALL, rolloutId } from '../../src/shared/topics.js';
import { rolloutWebApp, startAgentProcess } from '../support/agent-process.js';
import { Cleanup } from '../support/cleanup.js';
import type { CliProcess } from '../support/cli-process.js';
import { runCli } from '../support/cli-process.js';
import { startFakeGitHub } from '../support/fake-github.js';
import { GitFixture } from '../support/git-fixture.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { SECRET, startTestHub, watch, type BrokerKind } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5'];
const GITHUB_TOKEN = 'ghs_rollouts_test';

/**
 * A restart step that marks its host busy for `HOLD_MS` in a shared directory and logs how many
 * hosts were busy at that moment, so the test sees how many updates overlapped.
 */
const OVERLAP_RESTART = [
  process.execPath,
  '-e',
  `const fs = require('fs'), path = require('path');
   const dir = process.env.BUSY_DIR, me = path.join(dir, process.env.PUSHFLEET_AGENT);
   fs.writeFileSync(me, '');
   fs.appendFileSync(process.env.OVERLAP_LOG, fs.readdirSync(dir).length + '\\n');
   setTimeout(() => fs.rmSync(me), Number(process.env.HOLD_MS));`,
];
const HEALTH = { command: ['grep', '-qx', 'healthy', 'health.txt'], timeout: 1, interval: 0.2 };

describe('rollouts end to end: 5 agent processes, each with its own working copy', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function fleet(opts: { broker?: BrokerKind; policy: Record<string, unknown>; holdMs?: number; appEnv?: (host: string) => Record<string, string>; cloned?: boolean; githubUrl?: string }) {
    const git = new GitFixture({ 'app.txt': 'v0\n', 'health.txt': 'healthy\n' });
    cleanup.defer(() => git.remove());
    const busyDir = join(git.root, 'busy');
    mkdirSync(busyDir);
    const overlapLog = join(git.root, 'overlap.log');
    const github = opts.githubUrl && { apiUrl: opts.githubUrl, token: GITHUB_TOKEN };
    const hub = await startTestHub(cleanup, opts.broker ?? 'aedes', { engines: { rollouts: { defaults: opts.policy, ...(github && { github }) } } });
    const states = await watch(cleanup, hub.mqttUrl, ROLLOUT_STATE_ALL);
    const base = git.head();
    if (opts.cloned) for (const h of HOSTS) execFileSync('git', ['clone', '--quiet', git.bare, git.workdir(h)]);
    const agents = new Map<string, CliProcess>();
    await Promise.all(
      HOSTS.map(async (id) => {
        const app = rolloutWebApp(git, id, {
          restart: OVERLAP_RESTART,
          health: HEALTH,
          env: { BUSY_DIR: busyDir, OVERLAP_LOG: overlapLog, HOLD_MS: String(opts.holdMs ?? 300), ...opts.appEnv?.(id) },
        });
        agents.set(id, await startAgentProcess(cleanup, { id, mqttUrl: hub.mqttUrl, apps: [app], labels: { env: 'production' }, logLevel: 'info' }));
      }),
    );
    const snapshot = (id: string) => {
      const last = states.messages.filter((m) => m.topic === `pushfleet/rollouts/${id}/state` && m.payload).at(-1);
      const d = last && decode(RolloutSnapshot, last.payload);
      return d?.ok ? d.value : undefined;
    };
    const history = () => states.messages.map((m) => m.payload).join('\n');
    const until = (id: string, what: string, ok: (s: RolloutSnapshot) => boolean, timeoutMs?: number) =>
      waitFor(() => `rollout ${id}: ${what}; last: ${JSON.stringify(snapshot(id), null, 1)}`, () => {
        const s = snapshot(id);
        return s && ok(s) ? s : undefined;
      }, timeoutMs);
    const push = async (files: Record<string, string>, before: string) => {
      const sha = git.commit(`change ${JSON.stringify(files)}`, files);
      const res = await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: sha, before })));
      expect(res.status).toBe(200);
      return { sha, id: rolloutId('web', 'production', sha) };
    };
    const headOf = (h: string) => {
      try {
        return git.headOf(git.workdir(h));
      } catch {
        return null; // not cloned (yet)
      }
    };
    const heads = () => Object.fromEntries(HOSTS.map((h) => [h, headOf(h)]));
    const overlaps = () => (existsSync(overlapLog) ? readFileSync(overlapLog, 'utf8').trim().split('\n').map(Number) : []);
    return { git, hub, agents, base, push, until, snapshot, history, heads, overlaps };
  }

  const count = (s: RolloutSnapshot, ...states: RolloutHostState[]) => s.hosts.filter((h) => states.includes(h.state)).length;

  it('updates every host, never more than the batch size at once, canary first, and reports it to GitHub', async () => {
    const github = await startFakeGitHub(cleanup, GITHUB_TOKEN);
    const f = await fleet({ policy: { batchSize: 2, maxUnavailable: 2, canary: 1 }, githubUrl: github.url });
    const { sha, id } = await f.push({ 'app.txt': 'v1\n' }, f.base);
    const done = await f.until(id, 'succeeded', (s) => s.status === 'succeeded', 40_000);
    expect(count(done, 'succeeded')).toBe(5);
    expect(Object.values(f.heads())).toEqual(HOSTS.map(() => sha));
    expect(f.overlaps()).toHaveLength(5);
    expect(Math.max(...f.overlaps())).toBeLessThanOrEqual(2);
    // The canary finished before anyone else started.
    const canary = done.hosts.find((h) => h.canary)!;
    for (const h of done.hosts.filter((x) => !x.canary)) expect(Date.parse(h.startedAt!)).toBeGreaterThanOrEqual(Date.parse(canary.endedAt!));
    await waitFor('GitHub deployment marked success', () => github.statesOf(1000).at(-1) === 'success');
    expect(github.statesOf(1000)).toEqual(['in_progress', 'success']);
    expect(github.calls[0]!.body).toMatchObject({ ref: sha, environment: 'production' });
  });

  it('stops on a failed canary, which rolls itself back, and leaves the others on the old SHA', async () => {
    const f = await fleet({ policy: { batchSize: 5, canary: 1, failureThreshold: 3 }, holdMs: 50 });
    const good = await f.push({ 'app.txt': 'v1\n' }, f.base);
    await f.until(good.id, 'succeeded', (s) => s.status === 'succeeded', 30_000);
    const bad = await f.push({ 'health.txt': 'sick\n' }, good.sha);
    const aborted = await f.until(bad.id, 'aborted with no host updating', (s) => s.status === 'aborted' && count(s, 'updating') === 0, 30_000);
    expect(aborted.reason).toMatch(/^canary h\d failed: health/);
    expect(count(aborted, 'failed')).toBe(1);
    expect(count(aborted, 'skipped')).toBe(4);
    // The canary went back to the good SHA by itself; nobody else left it.
    expect(Object.values(f.heads())).toEqual(HOSTS.map(() => good.sha));
    expect(aborted.hosts.find((h) => h.canary)).toMatchObject({ state: 'failed', down: false, fromSha: good.sha });
  });

  it('aborts once failures reach the threshold; the remaining hosts never start', async () => {
    // Working copies start on the base commit, so failing hosts get back to it by themselves:
    // none is down, and only the threshold stops the rollout.
    const f = await fleet({ policy: { batchSize: 1, canary: 0, failureThreshold: 2 }, cloned: true });
    const { id } = await f.push({ 'health.txt': 'sick\n' }, f.base);
    const aborted = await f.until(id, 'aborted', (s) => s.status === 'aborted' && count(s, 'updating') === 0, 30_000);
    expect(aborted.reason).toMatch(/2 host\(s\) failed \(threshold 2\)/);
    expect(count(aborted, 'failed')).toBe(2);
    expect(count(aborted, 'skipped')).toBe(3);
    expect(aborted.hosts.filter((h) => h.state === 'failed').map((h) => h.down)).toEqual([false, false]);
    await new Promise((r) => setTimeout(r, 500));
    // Two hosts restarted twice each (the bad SHA, then back on base); three never started.
    expect(f.overlaps()).toHaveLength(4);
    expect(Object.values(f.heads())).toEqual(HOSTS.map(() => f.base));
  });

  it('lets a newer push supersede a running rollout: hosts still waiting skip the old SHA', async () => {
    const f = await fleet({ policy: { batchSize: 1, canary: 0 }, holdMs: 50 });
    const first = await f.push({ 'app.txt': 'v1\n' }, f.base);
    await f.until(first.id, 'one host done', (s) => count(s, 'succeeded') >= 1);
    const second = await f.push({ 'app.txt': 'v2\n' }, first.sha);
    const old = await f.until(first.id, 'superseded', (s) => s.status === 'superseded');
    expect(old.reason).toBe(`superseded by ${second.id}`);
    expect(count(old, 'skipped')).toBeGreaterThanOrEqual(1);
    await f.until(second.id, 'succeeded', (s) => s.status === 'succeeded', 40_000);
    expect(Object.values(f.heads())).toEqual(HOSTS.map(() => second.sha));
  });

  it('pauses and resumes where it stopped, from the CLI', async () => {
    // Slow hosts: the pause must land (a CLI process start) while most of them still wait.
    const f = await fleet({ policy: { batchSize: 1, canary: 0 }, holdMs: 800 });
    const { id } = await f.push({ 'app.txt': 'v1\n' }, f.base);
    await f.until(id, 'one host done', (s) => count(s, 'succeeded') >= 1);
    const paused = await runCli(['rollout', 'pause', id, '--mqtt-url', f.hub.mqttUrl]);
    expect(paused.code, paused.stderr).toBe(0);
    const held = await f.until(id, 'paused with nobody updating', (s) => s.status === 'paused' && count(s, 'updating') === 0);
    const doneWhenPaused = count(held, 'succeeded');
    await new Promise((r) => setTimeout(r, 1500));
    expect(count(f.snapshot(id)!, 'succeeded', 'updating')).toBe(doneWhenPaused);
    expect((await runCli(['rollout', 'pause', id, '--mqtt-url', f.hub.mqttUrl])).code).toBe(1); // already paused

    const resumed = await runCli(['rollout', 'resume', id, '--mqtt-url', f.hub.mqttUrl]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const done = await f.until(id, 'succeeded', (s) => s.status === 'succeeded', 40_000);
    expect(count(done, 'succeeded')).toBe(5);
    const listed = await runCli(['rollout', 'list', '--mqtt-url', f.hub.mqttUrl]);
    expect(listed.stdout).toMatch(new RegExp(`${id.replaceAll('.', '\\.')}\\s+succeeded`));
  });

  it('times out an agent killed mid-update and counts it as failed; the rest carry on', async () => {
    // h3 hangs in its restart step; the others are quick.
    const f = await fleet({ broker: 'mosquitto', policy: { batchSize: 2, canary: 0, failureThreshold: 2, hostTimeout: 3 }, appEnv: (h) => ({ HOLD_MS: h === 'h3' ? '60000' : '50' }) });
    const { sha, id } = await f.push({ 'app.txt': 'v1\n' }, f.base);
    // The kill lands while h3 is granted (its restart holds the busy marker open; kill it then).
    await f.until(id, 'h3 updating', (s) => s.hosts.find((h) => h.agent === 'h3')?.state === 'updating');
    await f.agents.get('h3')!.stop('SIGKILL');
    const ended = await f.until(id, 'ended', (s) => s.status === 'failed', 30_000);
    expect(ended.hosts.find((h) => h.agent === 'h3')).toMatchObject({ state: 'timed-out', error: 'no result within 3 s' });
    expect(count(ended, 'succeeded')).toBe(4);
    for (const h of HOSTS.filter((x) => x !== 'h3')) expect(f.heads()[h]).toBe(sha);
  });

  it('freezes an environment until unfreeze, keeps a pinned host where it is, and explains the plan first', async () => {
    // Over mosquitto with logins and the generated ACL: the CLI commands log in as operator.
    const f = await fleet({ broker: 'mosquitto', policy: { batchSize: 5, canary: 0 }, holdMs: 50 });
    const cli = (...args: string[]) => runCli([...args, '--mqtt-url', f.hub.mqttUrl]);
    expect((await cli('rollout', 'pin', 'h5', 'web', f.base)).code).toBe(0);
    await waitFor('h5 on the pinned SHA', () => f.heads().h5 === f.base);

    const explained = await cli('explain', '--repo', 'acme/web', '--branch', 'main');
    expect(explained.code, explained.stderr).toBe(0);
    expect(explained.stdout).toMatch(/rollout web\.production\.0{12}: 4 host\(s\) in production/);
    expect(explained.stdout).toContain('batch 1: h1, h2, h3, h4');
    expect(explained.stdout).toContain(`h5/web: pinned to ${f.base.slice(0, 8)}`);
    expect((await cli('explain', '--repo', 'acme/other', '--branch', 'main')).stdout).toContain('h1: no app follows acme/other');

    expect((await cli('rollout', 'freeze', 'production')).code).toBe(0);
    const { sha, id } = await f.push({ 'app.txt': 'v1\n' }, f.base);
    await f.until(id, 'frozen', (s) => s.status === 'frozen');
    await new Promise((r) => setTimeout(r, 1000));
    expect(Object.values(f.heads()).filter((h) => h === sha)).toEqual([]);
    expect((await cli('rollout', 'unfreeze', 'production')).code).toBe(0);
    const done = await f.until(id, 'succeeded', (s) => s.status === 'succeeded', 30_000);
    expect(done.hosts.map((h) => h.agent).sort()).toEqual(['h1', 'h2', 'h3', 'h4']);
    expect(f.heads()).toEqual({ h1: sha, h2: sha, h3: sha, h4: sha, h5: f.base });

    // Unpinned, h5 joins the finished rollout and catches up.
    expect((await cli('rollout', 'unpin', 'h5', 'web')).code).toBe(0);
    const caughtUp = await f.until(id, 'h5 succeeded', (s) => s.status === 'succeeded' && s.hosts.some((h) => h.agent === 'h5' && h.state === 'succeeded'), 30_000);
    expect(caughtUp.hosts).toHaveLength(5);
    expect(f.heads().h5).toBe(sha);
  });

  it('keeps its history and carries on after a hub restart', async () => {
    const policy = { batchSize: 1, canary: 0 };
    const f = await fleet({ broker: 'mosquitto', policy, holdMs: 800 });
    const { sha, id } = await f.push({ 'app.txt': 'v1\n' }, f.base);
    await f.until(id, 'one host done', (s) => count(s, 'succeeded') >= 1);
    expect((await runCli(['rollout', 'pause', id, '--mqtt-url', f.hub.mqttUrl])).code).toBe(0);
    await f.until(id, 'paused with nobody updating', (s) => s.status === 'paused' && count(s, 'updating') === 0);
    await f.hub.stop();

    const again = await startTestHub(cleanup, 'aedes', { mqtt: { url: f.hub.mqttUrl }, stateDir: f.hub.stateDir, engines: { rollouts: { defaults: policy } } });
    const listed = await runCli(['rollout', 'list', '--json', '--mqtt-url', again.mqttUrl]);
    expect(JSON.parse(listed.stdout)).toMatchObject([{ id, status: 'paused', sha, pusher: expect.any(String) }]);
    expect((await runCli(['rollout', 'resume', id, '--mqtt-url', again.mqttUrl])).code).toBe(0);
    const done = await f.until(id, 'succeeded', (s) => s.status === 'succeeded', 40_000);
    expect(count(done, 'succeeded')).toBe(5);
    expect(Object.values(f.heads())).toEqual(HOSTS.map(() => sha));
  });

  it('sends the hosts already updated back to their previous SHA when aborted with onAbort: rollback', async () => {
    const f = await fleet({ policy: { batchSize: 1, canary: 0, onAbort: 'rollback' }, cloned: true, holdMs: 800 });
    const { id } = await f.push({ 'app.txt': 'v1\n' }, f.base);
    await f.until(id, 'two hosts done', (s) => count(s, 'succeeded') >= 2);
    const aborted = await runCli(['rollout', 'abort', id, '--mqtt-url', f.hub.mqttUrl]);
    expect(aborted.code, aborted.stderr).toBe(0);
    const ended = await f.until(id, 'every host rolled back or skipped', (s) => s.status === 'aborted' && s.hosts.every((h) => h.state === 'rolled-back' || h.state === 'skipped'));
    expect(count(ended, 'rolled-back')).toBeGreaterThanOrEqual(2);
    expect(ended.reason).toMatch(/^aborted by /);
    await waitFor('every working copy back on base', () => Object.values(f.heads()).every((h) => h === f.base));
  });
});

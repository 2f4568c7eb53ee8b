import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppState, decode } from '../../src/shared/messages.js';
import { appStateTopic } from '../../src/shared/topics.js';
import { recordingRestart, startAgentProcess, type TestApp } from '../support/agent-process.js';
import { Cleanup } from '../support/cleanup.js';
import { GitFixture } from '../support/git-fixture.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { BROKERS, SECRET, startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const restarts = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : []);

describe.each(BROKERS)('core loop over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function setup(app: Partial<TestApp> = {}) {
    const git = new GitFixture({ 'app.txt': 'v0\n', 'health.txt': 'healthy\n' });
    cleanup.defer(() => git.remove());
    const hub = await startTestHub(cleanup, broker);
    const path = git.workdir('web');
    const restartLog = join(git.root, 'restarts.log');
    const appConfig: TestApp = { name: 'web', repo: 'acme/web', branch: 'main', path, remote: git.bare, restart: recordingRestart(restartLog), ...app };
    const states = await watch(cleanup, hub.mqttUrl, appStateTopic('node-1', 'web'));
    /** Waits for a state message, showing every state seen so far if it never comes. */
    const lastState = (state: string, sha: string) => {
      const decoded = states.messages.map((m) => decode(AppState, m.payload));
      const found = decoded.find((d) => d.ok && d.value.state === state && d.value.sha === sha);
      return found?.ok ? found.value : undefined;
    };
    const reached = (state: string, sha: string) =>
      waitFor(() => `state ${state} at ${sha}; seen: ${JSON.stringify(states.messages.map((m) => m.payload), null, 1)}`, () => lastState(state, sha));
    const push = (sha: string, before?: string) => postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: sha, before })));
    return { git, hub, path, restartLog, appConfig, reached, push, states };
  }

  it('moves a real working copy to the pushed SHA and restarts the app', async () => {
    const { git, hub, path, restartLog, appConfig, reached, push } = await setup();
    await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: hub.mqttUrl, apps: [appConfig] });
    const sha1 = git.commit('first', { 'app.txt': 'v1\n' });
    expect((await push(sha1)).status).toBe(200);
    await reached('deployed', sha1);
    expect(git.headOf(path)).toBe(sha1);
    expect(readFileSync(join(path, 'app.txt'), 'utf8')).toBe('v1\n');

    const sha2 = git.commit('second', { 'app.txt': 'v2\n' });
    await push(sha2, sha1);
    await reached('deployed', sha2);
    expect(git.headOf(path)).toBe(sha2);
    expect(restarts(restartLog)).toEqual([sha1, sha2]);
  });

  it('rolls back to the previous SHA when the health check fails', async () => {
    // Healthy only while health.txt says so: the second commit breaks it.
    const health = { command: ['grep', '-qx', 'healthy', 'health.txt'], timeout: 1, interval: 0.2 };
    const { git, hub, path, restartLog, appConfig, reached, push, states } = await setup({ health });
    const stateDir = cleanup.tempDir('pushfleet-agent-state-');
    const agent = await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: hub.mqttUrl, apps: [appConfig], stateDir });
    const good = git.commit('good', { 'app.txt': 'v1\n' });
    await push(good);
    await reached('deployed', good);

    const bad = git.commit('bad', { 'health.txt': 'sick\n' });
    await push(bad, good);
    const rolledBack = await reached('rolled-back', good);
    expect(rolledBack).toMatchObject({ targetSha: bad, lastError: { step: 'health' } });
    expect(git.headOf(path)).toBe(good);
    // restarted on the bad SHA, then again on the good one
    expect(restarts(restartLog)).toEqual([good, bad, good]);

    // A restarted agent still reports what happened, and does not try the same push again.
    expect(await agent.stop()).toBe(0);
    const seen = states.messages.length;
    await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: hub.mqttUrl, apps: [appConfig], stateDir });
    const after = await waitFor('a state message from the restarted agent', () => states.messages.slice(seen).map((m) => decode(AppState, m.payload)).find((d) => d.ok));
    expect(after.ok && after.value).toMatchObject({ state: 'rolled-back', sha: good, targetSha: bad, lastError: { step: 'health' } });
    await new Promise((r) => setTimeout(r, 1000));
    expect(restarts(restartLog)).toEqual([good, bad, good]);
  });

  it('converges an agent started after the push to the newest SHA', async () => {
    const { git, hub, path, restartLog, appConfig, reached, push } = await setup();
    const old = git.commit('old', { 'app.txt': 'old\n' });
    await push(old);
    const newest = git.commit('newest', { 'app.txt': 'new\n' });
    await push(newest, old);
    await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: hub.mqttUrl, apps: [appConfig] });
    await reached('deployed', newest);
    expect(git.headOf(path)).toBe(newest);
    expect(restarts(restartLog)).toEqual([newest]);
  });
});

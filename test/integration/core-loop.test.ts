import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgentProcess, type TestApp } from '../support/agent-process.js';
import { linesOf, startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';
import { BROKERS } from '../support/test-hub.js';

describe.each(BROKERS)('core loop over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  const setup = (app: Partial<TestApp> = {}) => startAppFixture(cleanup, broker, app);

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
    expect(linesOf(restartLog)).toEqual([sha1, sha2]);
  });

  it('rolls back to the previous SHA when the health check fails', async () => {
    // Healthy only while health.txt says so: the second commit breaks it.
    const health = { command: ['grep', '-qx', 'healthy', 'health.txt'], timeout: 1, interval: 0.2 };
    const { git, hub, path, restartLog, appConfig, reached, push, states, until } = await setup({ health });
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
    expect(linesOf(restartLog)).toEqual([good, bad, good]);

    // A restarted agent still reports what happened, and does not try the same push again.
    expect(await agent.stop()).toBe(0);
    const seen = states().length;
    await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: hub.mqttUrl, apps: [appConfig], stateDir });
    const after = await until('a state message from the restarted agent', () => true, seen);
    expect(after).toMatchObject({ state: 'rolled-back', sha: good, targetSha: bad, lastError: { step: 'health' } });
    await new Promise((r) => setTimeout(r, 1000));
    expect(linesOf(restartLog)).toEqual([good, bad, good]);
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
    expect(linesOf(restartLog)).toEqual([newest]);
  });
});

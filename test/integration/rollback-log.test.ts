import { afterEach, describe, expect, it } from 'vitest';
import { startAgentProcess } from '../support/agent-process.js';
import { startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('the log of a rollback', () => {
  it('logs the rollback restart and its output with the SHA it restores, marked as the rollback phase', async () => {
    // Healthy only while health.txt says so: the second commit breaks it.
    const health = { command: ['grep', '-qx', 'healthy', 'health.txt'], timeout: 1, interval: 0.2 };
    const restart = ['sh', '-c', 'echo "restarting on $PUSHFLEET_SHA"'];
    const { git, hub, appConfig, reached, push } = await startAppFixture(cleanup, 'aedes', { health, restart });
    const agent = await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: hub.mqttUrl, apps: [appConfig] });
    const good = git.commit('good', { 'app.txt': 'v1\n' });
    await push(good);
    await reached('deployed', good);
    const bad = git.commit('bad', { 'health.txt': 'sick\n' });
    await push(bad, good);
    await reached('rolled-back', good);
    await agent.waitForLog('update rolled-back', (l) => l.msg === 'update rolled-back');

    const restarts = agent.lines.filter((l) => l.step === 'restart' && l.stream === 'stdout').map((l) => ({ sha: l.sha, phase: l.phase, msg: l.msg }));
    expect(restarts).toEqual([
      { sha: good, phase: 'forward', msg: `restarting on ${good}` },
      { sha: bad, phase: 'forward', msg: `restarting on ${bad}` },
      { sha: good, phase: 'rollback', msg: `restarting on ${good}` },
    ]);
    expect(agent.lines.find((l) => l.step === 'health' && l.msg === 'step failed')).toMatchObject({ sha: bad, phase: 'forward' });
    expect(agent.lines.find((l) => l.msg === 'update rolled-back')).toMatchObject({ sha: good, targetSha: bad });
  });
});

import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppState } from '../../src/shared/messages.js';
import { startAgentProcess } from '../support/agent-process.js';
import { deployThenPushSlow, linesOf, startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';
import { BROKERS } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

/**
 * An update command that appends the SHA it runs for to `marker`, then, for a commit holding a
 * file `slow`, takes 3 s: long enough to kill the agent in the middle of it.
 */
const slowUpdate = (marker: string) => [
  process.execPath,
  '-e',
  `require('fs').appendFileSync(${JSON.stringify(marker)}, process.env.PUSHFLEET_SHA + '\\n');
   if (require('fs').existsSync('slow')) setTimeout(() => {}, 3000);`,
];

describe.each(BROKERS)('an agent killed -9 mid-update, over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function killedDuringUpdate(onInterrupted: 'redo' | 'rollback') {
    const stateDir = cleanup.tempDir('pushfleet-agent-state-');
    const health = { command: ['grep', '-qx', 'healthy', 'health.txt'], timeout: 5, interval: 0.2 };
    const marker = join(cleanup.tempDir('pushfleet-marker-'), 'updates.log');
    const f = await startAppFixture(cleanup, broker, { update: [slowUpdate(marker)], health, onInterrupted });
    const start = () => startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig], stateDir });
    const agent = await start();
    const { a, b } = await deployThenPushSlow(f);
    await waitFor('the update command running for B', () => linesOf(marker).includes(b));
    await agent.stop('SIGKILL');
    const beforeRestart = f.states().length;
    // Nothing may have said "deployed B": the checkout moved, but update, restart and health did not finish.
    expect(f.states().some((s) => s.state === 'deployed' && s.sha === b)).toBe(false);
    expect(f.git.headOf(f.path)).toBe(b);
    await start();
    return { ...f, a, b, marker, beforeRestart, start };
  }

  it('redoes the update from its first step on restart (onInterrupted: redo) and only then says deployed B', async () => {
    const f = await killedDuringUpdate('redo');
    const deployed = await f.until('deployed B after the restart', (s) => s.state === 'deployed' && s.sha === f.b, f.beforeRestart);
    const afterRestart = f.states().slice(f.beforeRestart);
    // The restarted agent never claimed B before redoing it: updating first, with the interruption named.
    const firstDeployed = afterRestart.findIndex((s: AppState) => s.state === 'deployed' && s.sha === f.b);
    expect(afterRestart.findIndex((s: AppState) => s.state === 'updating' && s.interrupted?.action === 'redo')).toBeLessThan(firstDeployed);
    expect(afterRestart.slice(0, firstDeployed).every((s) => s.sha === f.a)).toBe(true);
    expect(deployed).toMatchObject({ targetSha: f.b, interrupted: { step: 'update', phase: 'forward', action: 'redo' } });
    // The update ran again for B and the restart ran for B, once.
    expect(linesOf(f.marker)).toEqual([f.a, f.b, f.b]);
    expect(linesOf(f.restartLog)).toEqual([f.a, f.b]);
  });

  it('rolls back to A on restart (onInterrupted: rollback), says so, and a later push of B is not skipped', async () => {
    const f = await killedDuringUpdate('rollback');
    const back = await f.until('rolled back to A after the restart', (s) => s.state === 'rolled-back' && s.sha === f.a, f.beforeRestart);
    expect(back).toMatchObject({ targetSha: f.b, interrupted: { step: 'update', action: 'rollback' }, lastError: { step: 'update', message: expect.stringMatching(/stopped during update/) } });
    expect(f.git.headOf(f.path)).toBe(f.a);
    expect(linesOf(f.marker)).toEqual([f.a, f.b, f.a]);
    expect(linesOf(f.restartLog)).toEqual([f.a, f.a]);

    // B never completed: a new push of it is applied in full, not taken as "already deployed".
    const seen = f.states().length;
    expect((await f.push(f.b, f.a)).status).toBe(200);
    await f.until('deployed B after a new push of it', (s) => s.state === 'deployed' && s.sha === f.b, seen);
    expect(linesOf(f.restartLog)).toEqual([f.a, f.a, f.b]);
  });
});

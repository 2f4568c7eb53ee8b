import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgentProcess } from '../support/agent-process.js';
import { linesOf, startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';
import { fillDisk, smallDisk } from '../support/small-disk.js';
import { BROKERS } from '../support/test-hub.js';

describe.each(BROKERS)('an agent whose state dir is full, over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('touches nothing while it cannot write its journal, says why, and deploys once there is room', async () => {
    const stateDir = smallDisk(cleanup, '256k');
    const f = await startAppFixture(cleanup, broker, { retryDelay: 0.2, retryMaxDelay: 0.5 });
    await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig], stateDir });
    const a = f.git.commit('A', { 'app.txt': 'A\n' });
    await f.push(a);
    await f.reached('deployed', a);

    const filler = fillDisk(join(stateDir, 'filler'));
    const b = f.git.commit('B', { 'app.txt': 'B\n' });
    expect((await f.push(b, a)).status).toBe(200);
    const stuck = await f.until('the journal error', (s) => s.lastError?.message.startsWith('cannot write the journal') === true);
    expect(stuck).toMatchObject({ sha: a, lastError: { message: expect.stringMatching(/ENOSPC/) } });
    await new Promise((r) => setTimeout(r, 1000));
    expect(f.git.headOf(f.path)).toBe(a);
    expect(linesOf(f.restartLog)).toEqual([a]);
    expect(f.states().some((s) => s.state === 'deployed' && s.sha === b)).toBe(false);

    rmSync(filler);
    await f.reached('deployed', b);
    expect(linesOf(f.restartLog)).toEqual([a, b]);
  });
});

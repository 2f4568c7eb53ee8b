import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgentProcess } from '../support/agent-process.js';
import { linesOf, startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';
import { fillDisk, smallDisk } from '../support/small-disk.js';
import { BROKERS } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

describe.each(BROKERS)('an agent whose state dir is full, over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('touches nothing while it cannot write its journal, says why, deploys once there is room, and goes on deploying on the full disk', async () => {
    const stateDir = smallDisk(cleanup, '256k');
    const f = await startAppFixture(cleanup, broker, { retryDelay: 0.2, retryMaxDelay: 0.5 });
    await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig], stateDir });
    // A push the app does not follow: its signature's record is on disk, the app's journal is not yet.
    const other = f.git.commit('other', { 'app.txt': 'other\n' }, 'other');
    expect((await f.push(other, undefined, 'refs/heads/other')).status).toBe(200);
    await waitFor('the record of accepted signatures', () => existsSync(join(stateDir, 'signed-seen.json')));

    let filler = fillDisk(join(stateDir, 'filler'));
    const a = f.git.commit('A', { 'app.txt': 'A\n' }, 'main');
    expect((await f.push(a)).status).toBe(200);
    const stuck = await f.until('the journal error', (s) => s.lastError?.message.startsWith('cannot write the journal: ') === true);
    expect(stuck).toMatchObject({ targetSha: a, lastError: { message: expect.stringMatching(/ENOSPC/) } });
    await new Promise((r) => setTimeout(r, 1000));
    expect(existsSync(f.path)).toBe(false); // not even cloned
    expect(linesOf(f.restartLog)).toEqual([]);
    expect(f.states().some((s) => s.state === 'deployed')).toBe(false);

    rmSync(filler);
    await f.reached('deployed', a);
    expect(linesOf(f.restartLog)).toEqual([a]);

    // Once made, the journal and the record of signatures are rewritten in place: a full disk no longer stops an update.
    filler = fillDisk(join(stateDir, 'filler'));
    const b = f.git.commit('B', { 'app.txt': 'B\n' });
    expect((await f.push(b, a)).status).toBe(200);
    await f.reached('deployed', b);
    expect(linesOf(f.restartLog)).toEqual([a, b]);
  });
});

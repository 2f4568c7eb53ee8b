import { afterEach, describe, expect, it } from 'vitest';
import { startAgentProcess } from '../support/agent-process.js';
import { linesOf, startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';
import { allowedSignersFile, sshKey, tamperedCopy } from '../support/signing-keys.js';

/**
 * An app with `verify: { mode: ssh }` behind a real hub and agent: only commits signed by a key
 * in its allowed signers file are checked out; everything else is refused where it stands.
 */
describe('signed commits (verify: ssh)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('deploys commits signed by an allowed key; refuses unsigned, other-key and tampered ones without touching the app, also after a restart', async () => {
    const keys = cleanup.tempDir('pushfleet-keys-');
    const ada = sshKey(keys, 'ada');
    const eve = sshKey(keys, 'eve');
    const verify = { mode: 'ssh' as const, allowedSigners: allowedSignersFile(keys, 'allowed_signers', [ada.allowed('ada@example.com')]) };
    const f = await startAppFixture(cleanup, 'aedes', { verify });
    const stateDir = cleanup.tempDir('pushfleet-agent-state-');
    const agent = await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig], stateDir });

    const a = f.git.commit('A', { 'app.txt': 'A\n' }, 'main', ada.signs);
    expect((await f.push(a)).status).toBe(200);
    await f.reached('deployed', a);
    expect(f.git.headOf(f.path)).toBe(a);

    /** Pushes `sha`, waits for its refusal, and checks that nothing moved. */
    const refused = async (sha: string, before: string, reason: string) => {
      expect((await f.push(sha, before)).status).toBe(200);
      const s = await f.until(`${sha.slice(0, 7)} refused`, (m) => m.refused?.sha === sha);
      expect(s).toMatchObject({ state: 'failed', sha: a, targetSha: sha, refused: { sha, reason }, lastError: { step: 'verify', message: expect.stringMatching(new RegExp(`^refused: ${reason} `)) } });
      expect(f.git.headOf(f.path)).toBe(a);
      expect(linesOf(f.restartLog)).toEqual([a]);
    };
    const unsigned = f.git.commit('unsigned', { 'app.txt': 'U\n' });
    await refused(unsigned, a, 'unsigned');
    const byEve = f.git.commit('by eve', { 'app.txt': 'E\n' }, 'main', eve.signs);
    await refused(byEve, unsigned, 'untrusted-signer');
    const forged = tamperedCopy(f.git.bare, f.git.commit('signed, then altered', { 'app.txt': 'T\n' }, 'main', ada.signs));
    await refused(forged, byEve, 'bad-signature');

    // The refusal is journaled: a restarted agent reports it and does not try that push again.
    expect(await agent.stop()).toBe(0);
    const seen = f.states().length;
    const again = await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig], stateDir });
    expect(await f.until('a state message from the restarted agent', () => true, seen)).toMatchObject({ state: 'failed', sha: a, refused: { sha: forged, reason: 'bad-signature' } });

    // A properly signed push after the refusals deploys as usual.
    const b = f.git.commit('B', { 'app.txt': 'B\n' }, 'main', ada.signs);
    expect((await f.push(b, forged)).status).toBe(200);
    expect(await f.reached('deployed', b)).toMatchObject({ refused: null, lastError: null });
    expect(f.git.headOf(f.path)).toBe(b);
    expect(linesOf(f.restartLog)).toEqual([a, b]);
    // The restarted agent began exactly one update: B's (the retained forged head was not retried).
    expect(again.lines.filter((l) => l.msg === 'update started').map((l) => l.sha)).toEqual([b]);
  });
});

import { renameSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgentProcess } from '../support/agent-process.js';
import { linesOf, startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';
import { BROKERS } from '../support/test-hub.js';

/** A "git server" that accepts connections and never answers: a stalled remote. */
async function stalledServer(cleanup: Cleanup): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.defer(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/acme/web.git`;
}

/** An update command that records the SHA it ran for, and fails for a commit whose app.txt says "broken". */
const checkedUpdate = (marker: string) => [
  process.execPath,
  '-e',
  `const fs = require('fs'); fs.appendFileSync(${JSON.stringify(marker)}, process.env.PUSHFLEET_SHA + '\\n');
   if (fs.readFileSync('app.txt', 'utf8').trim() === 'broken') { console.error('build failed'); process.exit(1); }`,
];

describe.each(BROKERS)('agent retries over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('retries a fetch while the remote is gone, showing retrying with attempt and next try, and deploys once it is back', async () => {
    const f = await startAppFixture(cleanup, broker, { retryDelay: 0.2, retryMaxDelay: 1 });
    await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig] });
    const a = f.git.commit('A', { 'app.txt': 'A\n' });
    await f.push(a);
    await f.reached('deployed', a);

    const b = f.git.commit('B', { 'app.txt': 'B\n' });
    const away = `${f.git.bare}.away`;
    renameSync(f.git.bare, away);
    expect((await f.push(b, a)).status).toBe(200);
    const retrying = await f.until('retrying the fetch a second time', (s) => s.state === 'retrying' && (s.retrying?.attempt ?? 0) >= 3);
    expect(retrying).toMatchObject({ sha: a, targetSha: b, retrying: { step: 'fetch' }, lastError: { step: 'fetch', message: expect.stringMatching(/^git fetch exited with status/) } });
    expect(Date.parse(retrying.retrying!.nextAt)).toBeGreaterThan(Date.parse(retrying.updatedAt) - 1);
    expect(f.git.headOf(f.path)).toBe(a);

    renameSync(away, f.git.bare);
    await f.reached('deployed', b);
    expect(linesOf(f.restartLog)).toEqual([a, b]);
  });

  it('cuts a stalled fetch at its timeout and tries again', async () => {
    const remote = await stalledServer(cleanup);
    const f = await startAppFixture(cleanup, broker, { fetchTimeout: 1, retryDelay: 0.2, retryMaxDelay: 0.5 });
    await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [{ ...f.appConfig, remote }] });
    const a = f.git.commit('A', { 'app.txt': 'A\n' });
    await f.push(a);
    const stalled = await f.until('a second timed-out fetch', (s) => s.state === 'retrying' && (s.retrying?.attempt ?? 0) >= 3, 0, 30_000);
    expect(stalled).toMatchObject({ targetSha: a, lastError: { step: 'fetch', message: expect.stringMatching(/^git clone timed out after 1 s/) } });
  });

  it('does not retry a failed update by itself, but does on `pushfleet retry` and on a new push', async () => {
    const marker = join(cleanup.tempDir('pushfleet-marker-'), 'updates.log');
    const stateDir = cleanup.tempDir('pushfleet-agent-state-');
    const f = await startAppFixture(cleanup, broker, { update: [checkedUpdate(marker)] });
    const start = () => startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig], stateDir });
    const agent = await start();
    const retry = () => runCli(['retry', '--agent', 'node-1', '--app', 'web', '--mqtt-url', f.hub.mqttUrl]);
    /** An update of the broken SHA started after the `from`-th state message, and was rolled back. */
    const rolledBackAgain = async (what: string, from: number) => {
      await f.until(`updating ${what}`, (s) => s.state === 'updating', from);
      const started = f.states().findIndex((s, i) => i >= from && s.state === 'updating');
      return f.until(`rolled back ${what}`, (s) => s.state === 'rolled-back', started);
    };
    const a = f.git.commit('A', { 'app.txt': 'A\n' });
    await f.push(a);
    await f.reached('deployed', a);
    const bad = f.git.commit('broken', { 'app.txt': 'broken\n' });
    await f.push(bad, a);
    await f.until('rolled back from the broken build', (s) => s.state === 'rolled-back' && s.targetSha === bad);
    expect(linesOf(marker)).toEqual([a, bad, a]);

    // Not by itself: not later, and not when the restarted agent is handed the same retained head again.
    await agent.stop();
    await start();
    await new Promise((r) => setTimeout(r, 1500));
    expect(linesOf(marker)).toEqual([a, bad, a]);

    const seen = f.states().length;
    const retried = await retry();
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toMatch(new RegExp(`^node-1/web: trying ${bad.slice(0, 12)} again \\(it ended rolled-back at update\\)\\n$`));
    await rolledBackAgain('after the retry', seen);
    expect(linesOf(marker)).toEqual([a, bad, a, bad, a]);

    const again = f.states().length;
    await f.push(bad, a); // the same SHA, pushed again: a new delivery
    await rolledBackAgain('after a new push', again);
    expect(linesOf(marker)).toEqual([a, bad, a, bad, a, bad, a]);

    const fixed = f.git.commit('fixed', { 'app.txt': 'C\n' });
    await f.push(fixed, bad);
    await f.reached('deployed', fixed);
    const nothing = await retry();
    expect(nothing.code).toBe(3);
    expect(nothing.stdout).toMatch(/^node-1\/web: nothing to retry/);
  });

  it('`pushfleet retry` explains itself: --help, bad names, no answer', async () => {
    const help = await runCli(['retry', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--agent <id>[\s\S]*--app <name>[\s\S]*Exit codes: 0/);
    const bad = await runCli(['retry', '--agent', 'a/b', '--app', 'web']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--agent <id>.*expected letters, digits/);
    const f = await startAppFixture(cleanup, broker);
    const silent = await runCli(['retry', '--agent', 'nobody', '--app', 'web', '--wait', '1', '--mqtt-url', f.hub.mqttUrl]);
    expect(silent.code).toBe(1);
    expect(silent.stderr).toBe('pushfleet: no answer from agent nobody within 1 s: is it online, and does it run an app "web"?\n');
  });
});

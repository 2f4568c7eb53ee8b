import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { CliProcess } from '../support/cli-process.js';
import { freePort } from '../support/ports.js';
import { hubKeyFor } from '../support/signer.js';
import { SECRET, startTestHub } from '../support/test-hub.js';

/** Starts `pushfleet <role> --config <file>`, killed at cleanup. */
function start(cleanup: Cleanup, role: 'hub' | 'agent', file: string): CliProcess {
  const proc = new CliProcess([role, '--config', file]);
  cleanup.defer(() => proc.stop('SIGKILL'));
  return proc;
}

/**
 * A second process on a state dir in use refuses to start, with one line and exit 1, and the
 * first goes on; the lock dies with its holder, even by kill -9, so the next start needs nobody.
 */
describe('one process per state directory', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function hubConfig(): Promise<string> {
    const dir = cleanup.tempDir('pushfleet-lock-hub-');
    const file = join(dir, 'hub.yaml');
    const config = { http: { host: '127.0.0.1', port: await freePort() }, broker: { port: await freePort() }, webhook: { secret: SECRET }, stateDir: join(dir, 'state') };
    writeFileSync(file, JSON.stringify(config));
    return file;
  }

  /** The first holds the state dir; a second is refused; after a kill -9 of the first a third starts. */
  async function refusesASecond(role: 'hub' | 'agent', file: string, ready: string): Promise<void> {
    const first = start(cleanup, role, file);
    await first.waitForLog(`the first ${role} ready`, (l) => l.msg === ready);
    const second = start(cleanup, role, file);
    expect(await second.exited).toBe(1);
    expect(second.stderr.trim()).toMatch(new RegExp(`^pushfleet: another pushfleet ${role} is running on the state directory .*${role}\\.lock is held.*$`));
    expect(second.lines.some((l) => l.msg === ready)).toBe(false);
    expect(first.lines.some((l) => /stopped/.test(l.msg))).toBe(false);

    await first.stop('SIGKILL');
    const third = start(cleanup, role, file);
    await third.waitForLog(`a ${role} after the holder was killed`, (l) => l.msg === ready);
  }

  it('hub', async () => {
    await refusesASecond('hub', await hubConfig(), 'webhook listening');
  });

  it('agent', async () => {
    const hub = await startTestHub(cleanup, 'aedes');
    const dir = cleanup.tempDir('pushfleet-lock-agent-');
    const file = join(dir, 'agent.yaml');
    const app = { name: 'web', repo: 'acme/web', branch: 'main', path: join(dir, 'web'), remote: join(dir, 'nowhere.git'), restart: ['true'] };
    writeFileSync(file, JSON.stringify({ id: 'node-1', mqtt: { url: hub.mqttUrl }, hubPublicKey: hubKeyFor(hub.mqttUrl), stateDir: join(dir, 'state'), apps: [app] }));
    await refusesASecond('agent', file, 'agent online');
  });
});

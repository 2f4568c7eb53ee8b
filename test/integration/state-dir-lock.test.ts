import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { lockStateDir } from '../../src/shared/state-dir-lock.js';
import { Cleanup } from '../support/cleanup.js';
import { CliProcess } from '../support/cli-process.js';
import { freePort } from '../support/ports.js';
import { hubKeyFor } from '../support/signer.js';
import { SECRET, startTestHub } from '../support/test-hub.js';

const LOCK_MODULE = fileURLToPath(new URL('../../dist/src/shared/state-dir-lock.js', import.meta.url));

type LockerAnswer = { held: boolean; message?: string; child?: number };

/**
 * A node process that takes the agent lock on `dir` (the built module), optionally starts a
 * `sleep` of its own that outlives it, answers one JSON line, and keeps the lock `holdMs`.
 */
function locker(cleanup: Cleanup, dir: string, holdMs: number, leaveChild = false): { answer: Promise<LockerAnswer>; pid: number; exited: Promise<unknown> } {
  const script = `import { lockStateDir } from ${JSON.stringify(LOCK_MODULE)};
    import { spawn } from 'node:child_process';
    let answer;
    try {
      lockStateDir(process.argv[1], 'agent');
      answer = { held: true };
      if (${leaveChild}) { const c = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' }); c.unref(); answer.child = c.pid; }
    } catch (err) { answer = { held: false, message: err.message }; }
    console.log(JSON.stringify(answer));
    setTimeout(() => {}, ${holdMs});`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.defer(() => void child.kill('SIGKILL'));
  let out = '';
  const answer = new Promise<LockerAnswer>((resolve) => child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk).includes('\n') && resolve(JSON.parse(out) as LockerAnswer)));
  return { answer, pid: child.pid!, exited: new Promise((r) => child.once('exit', r)) };
}

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

  it('of agents racing for one state directory, exactly one holds it', async () => {
    const dir = cleanup.tempDir('pushfleet-lock-race-');
    const answers = await Promise.all(Array.from({ length: 6 }, () => locker(cleanup, dir, 3000).answer));
    expect(answers.filter((a) => a.held)).toHaveLength(1);
    for (const refused of answers.filter((a) => !a.held)) expect(refused.message).toMatch(/^another pushfleet agent is running on the state directory .*agent\.lock is held/);
  });

  it('is not kept by a child the holder started, once the holder is killed', async () => {
    const dir = cleanup.tempDir('pushfleet-lock-child-');
    // The holder leaves a process behind (as an app's restart command may): it must not hold the lock on.
    const holder = locker(cleanup, dir, 60_000, true);
    const { held, child } = await holder.answer;
    expect(held).toBe(true);
    cleanup.defer(() => process.kill(child!, 'SIGKILL'));
    expect(() => lockStateDir(dir, 'agent')).toThrow(/agent\.lock is held, by pid \d+ since /);
    process.kill(holder.pid, 'SIGKILL');
    await holder.exited;
    expect(() => process.kill(child!, 0)).not.toThrow(); // the child lives on
    const lock = lockStateDir(dir, 'agent');
    lock.release();
    lock.release(); // a second release is harmless
  });
});

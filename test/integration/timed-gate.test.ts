import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startTimed, timedGateShell } from '../../agent/node/timed-gate.js';
import { Cleanup } from '../support/cleanup.js';
import { waitFor } from '../support/wait.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const env = { PATH: process.env.PATH };
const nowUs = () => Date.now() * 1000;
/** Whether `pid` is still running: a gate orphaned by its agent's death is a zombie once it exits, until init reaps it. */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('the timed gate (bash)', () => {
  it('is available here (Debian ships bash 5), unless the environment has what bash rewrites', async () => {
    expect(await timedGateShell(env)).toEqual({ bash: expect.stringMatching(/^[5-9]\./) });
    expect(await timedGateShell({ ...env, SHELLOPTS: 'xtrace' })).toEqual({ why: expect.stringContaining('SHELLOPTS') });
  });

  it('execs the action at its instant and not before, and says when it went', async () => {
    const dir = cleanup.tempDir('pushfleet-timed-');
    const marker = join(dir, 'ran');
    const atUs = nowUs() + 400_000;
    let releasedUs: number | null = null;
    // The action stamps its own start (ns, CLOCK_REALTIME) first thing, and gets its words as they are.
    const proc = startTimed(['sh', '-c', 'date +%s%N; touch "$1"; printf "%s|" "$@"', 'zero', marker, '$HOME "q"', '*'], { env }, atUs, (us) => (releasedUs = us));
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(marker)).toBe(false);
    expect(alive(proc.pid!)).toBe(true);
    const exit = await proc.exited;
    expect(exit).toMatchObject({ code: 0, signal: null, error: null });
    const [stamp, words] = exit.tail.split('\n');
    expect(words).toBe(`${marker}|$HOME "q"|*|`);
    expect(releasedUs).not.toBeNull();
    expect(releasedUs!).toBeGreaterThanOrEqual(atUs);
    expect(BigInt(stamp!)).toBeGreaterThanOrEqual(BigInt(releasedUs!) * 1000n);
  });

  it('keeps time under a locale whose decimal point is a comma (EPOCHREALTIME has it, read -t refuses it)', async () => {
    const locales = cleanup.tempDir('pushfleet-timed-locale-');
    const made = spawnSync('localedef', ['-i', 'de_DE', '-f', 'UTF-8', join(locales, 'de_DE.UTF-8')], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const atUs = nowUs() + 300_000;
    let releasedUs: number | null = null;
    const proc = startTimed(['date', '+%s%N'], { env: { ...env, LOCPATH: locales, LC_ALL: 'de_DE.UTF-8' } }, atUs, (us) => (releasedUs = us));
    const exit = await proc.exited;
    expect(exit).toMatchObject({ code: 0, tail: expect.stringMatching(/^\d{19}\n$/) });
    expect(releasedUs!).toBeGreaterThanOrEqual(atUs);
    expect(BigInt(exit.tail.trim())).toBeGreaterThanOrEqual(BigInt(atUs) * 1000n);
  });

  it('stopped before its instant: the action never runs', async () => {
    const dir = cleanup.tempDir('pushfleet-timed-');
    const marker = join(dir, 'ran');
    const atUs = nowUs() + 500_000;
    let released = false;
    const proc = startTimed(['touch', marker], { env }, atUs, () => (released = true));
    await new Promise((r) => setTimeout(r, 100));
    proc.terminate();
    expect(await proc.exited).toMatchObject({ code: null, signal: 'SIGTERM' });
    await waitFor('the start instant to pass', () => nowUs() > atUs + 200_000, 5000);
    expect(existsSync(marker)).toBe(false);
    expect(released).toBe(false);
  });

  it('an instant that is not a plain number: it refuses, nothing runs', async () => {
    const dir = cleanup.tempDir('pushfleet-timed-');
    const marker = join(dir, 'ran');
    const proc = startTimed(['touch', marker], { env }, NaN, () => undefined);
    expect(await proc.exited).toMatchObject({ code: 125 });
    expect(existsSync(marker)).toBe(false);
  });

  it('the agent killed -9 before the instant: the gate leaves at once and the action never runs', async () => {
    const dir = cleanup.tempDir('pushfleet-timed-');
    const marker = join(dir, 'ran');
    const atUs = nowUs() + 3_000_000;
    // A Node process standing in for the agent: arms a gate, says its pid, then waits to be killed.
    const module = pathToFileURL(resolve('dist/agent/node/timed-gate.js')).href;
    const script = `import { startTimed } from ${JSON.stringify(module)};
      const p = startTimed(['touch', ${JSON.stringify(marker)}], { env: { PATH: process.env.PATH } }, ${atUs}, () => undefined);
      console.log(p.pid); setInterval(() => {}, 1000);`;
    const agent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.defer(() => agent.kill('SIGKILL'));
    let out = '';
    agent.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const gatePid = Number(await waitFor('the gate pid', () => /^(\d+)\n/.exec(out)?.[1], 10_000));
    expect(alive(gatePid)).toBe(true);
    agent.kill('SIGKILL');
    // Gone long before its instant: it does not wait for T to notice that nobody will cancel it.
    await waitFor('the gate to exit', () => !alive(gatePid), 1000);
    expect(nowUs()).toBeLessThan(atUs);
    await waitFor('the start instant to pass', () => nowUs() > atUs + 200_000, 6000);
    expect(existsSync(marker)).toBe(false);
  });
});

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { launch } from '../../agent/run-command.js';
import { SpareProcesses, spareSpec } from '../../agent/spare-process.js';
import { Cleanup } from '../support/cleanup.js';

describe('a command started from a spare', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('runs with exactly its argv, directory and environment, only once opened, and records its output and status', async () => {
    const spares = new SpareProcesses();
    cleanup.defer(() => spares.close());
    const dir = cleanup.tempDir('pushfleet-spare-');
    const env = { PATH: process.env.PATH, WEIRD: ' $HOME "q" \\n ', EMPTY: '' };
    const argv = ['sh', '-c', 'printf "%s|%s|%s|%s\\n" "$PWD" "$WEIRD" "$EMPTY" "$1"; env | grep -c OLDPWD; exit 3', 'zero', '$1 *'];
    for (let round = 0; round < 3; round++) {
      let recorded = false;
      const proc = await launch(argv, { cwd: dir, env, spares }, async () => {
        await new Promise((r) => setTimeout(r, 50));
        recorded = true;
      });
      const exit = await proc.exited;
      expect(recorded).toBe(true);
      expect(exit).toMatchObject({ code: 3, signal: null, error: null });
      expect(exit.tail.trim().split('\n')).toEqual([`${dir}| $HOME "q" \\n ||$1 *`, '0']);
    }
  });

  it('runs nothing when the agent dies before opening it: the spare reads end of file and exits', async () => {
    const spares = new SpareProcesses();
    cleanup.defer(() => spares.close());
    const dir = cleanup.tempDir('pushfleet-spare-');
    const marker = join(dir, 'ran');
    const child = spares.take(spareSpec(['touch', marker], dir, { PATH: process.env.PATH })!)!;
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.stdin!.end(); // what the agent's death does to the pipe: closed without the open line
    expect(await exited).toBe(1); // the last read failed: nothing was exec'd
    expect(existsSync(marker)).toBe(false);
  });

  it('starts nothing once closed', () => {
    const spares = new SpareProcesses();
    spares.close();
    expect(spares.take(spareSpec(['true'], '/', {})!)).toBeNull();
  });
});

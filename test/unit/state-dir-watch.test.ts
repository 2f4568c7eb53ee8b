import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StateDirWatch, stateDirProblem } from '../../src/hub/state-dir-watch.js';
import { Cleanup } from '../support/cleanup.js';

const paths = { dir: '/var/lib/pushfleet', db: '/var/lib/pushfleet/hub.sqlite' };
const opened = { dir: { dev: 1n, ino: 10n }, db: { dev: 1n, ino: 11n } };

describe('stateDirProblem', () => {
  it('is nothing while both are the ones opened, or cannot be looked at', () => {
    expect(stateDirProblem(paths, opened, opened)).toBeUndefined();
    expect(stateDirProblem(paths, opened, { dir: 'unknown', db: 'unknown' })).toBeUndefined();
  });

  it('names the directory when it is gone or another one, before the file in it', () => {
    expect(stateDirProblem(paths, opened, { dir: 'missing', db: 'missing' })).toBe('state directory /var/lib/pushfleet is gone; restart the hub with its state dir');
    expect(stateDirProblem(paths, opened, { dir: { dev: 1n, ino: 12n }, db: opened.db })).toBe('state directory /var/lib/pushfleet was replaced; restart the hub with its state dir');
    expect(stateDirProblem(paths, opened, { dir: { dev: 2n, ino: 10n }, db: opened.db })).toMatch(/was replaced/);
  });

  it('names the database when only it was removed or replaced', () => {
    expect(stateDirProblem(paths, opened, { dir: opened.dir, db: 'missing' })).toBe('state database /var/lib/pushfleet/hub.sqlite was removed; restart the hub with its state dir');
    expect(stateDirProblem(paths, opened, { dir: opened.dir, db: { dev: 1n, ino: 99n } })).toBe('state database /var/lib/pushfleet/hub.sqlite was replaced; restart the hub with its state dir');
  });
});

describe('StateDirWatch on a real directory', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  function watched() {
    const dir = join(cleanup.tempDir('pushfleet-watch-'), 'state');
    mkdirSync(dir);
    writeFileSync(join(dir, 'hub.sqlite'), '');
    const lost: string[] = [];
    // A long interval: these tests call check() themselves, as the timer would.
    const watch = new StateDirWatch({ dir, db: join(dir, 'hub.sqlite') }, (p) => lost.push(p), 3_600_000);
    watch.start();
    cleanup.defer(() => watch.stop());
    return { dir, watch, lost };
  }

  it('reports a directory put back in place as replaced, once, and stays lost', () => {
    const { dir, watch, lost } = watched();
    watch.check();
    expect(watch.lost).toBeUndefined();
    // Restored from a copy: the same path and names, other inodes.
    renameSync(dir, `${dir}.old`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'hub.sqlite'), '');
    watch.check();
    watch.check();
    expect(lost).toEqual([`state directory ${dir} was replaced; restart the hub with its state dir`]);
    rmSync(dir, { recursive: true });
    renameSync(`${dir}.old`, dir);
    watch.check();
    expect(watch.lost).toBe(lost[0]);
  });

  it('notices a parent directory moved away, which fs.watch on the directory does not report', () => {
    const { dir, watch } = watched();
    const parent = join(dir, '..');
    renameSync(parent, `${parent}.moved`);
    cleanup.defer(() => rmSync(`${parent}.moved`, { recursive: true, force: true }));
    watch.check();
    expect(watch.lost).toBe(`state directory ${dir} is gone; restart the hub with its state dir`);
  });
});

import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Cleanup } from './cleanup.js';

/** A small tmpfs of its own (we run as root, here and in CI), unmounted before its dir is removed. */
export function smallDisk(cleanup: Cleanup, size: string): string {
  const dir = cleanup.tempDir('pushfleet-disk-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  cleanup.defer(() => execFileSync('umount', ['-l', dir]));
  return dir;
}

/** Writes `file` until the disk refuses more; returns its path so the test can free the space. */
export function fillDisk(file: string): string {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(16 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return file;
}

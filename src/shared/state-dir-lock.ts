import { spawnSync } from 'node:child_process';
import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StartupError } from './startup.js';

export type StateDirLock = { release(): void };

/**
 * Holds `<dir>/<role>.lock`, so a second process cannot share the state dir: two agents would run
 * one app's update twice in one working copy, two hubs would each answer for a broker the other
 * one's subscribers never see.
 *
 * The lock is flock(2) on the file, which the kernel drops when the process dies, even by kill -9,
 * so a stale lock never needs a person. Node has no flock call, so flock(1) takes it on this
 * process's own descriptor, passed as its fd 3: an flock belongs to the open file, not to the
 * process that asked, so it stays held through our descriptor after flock(1) has exited, and goes
 * with it. (Node opens every file close-on-exec, so no child of ours holds it on.)
 */
export function lockStateDir(dir: string, role: 'hub' | 'agent'): StateDirLock {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${role}.lock`);
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    const flock = spawnSync('flock', ['--nonblock', '--exclusive', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], encoding: 'utf8' });
    if (flock.error) throw new StartupError(`cannot lock the state directory ${dir}: flock(1) (util-linux) did not run: ${flock.error.message}`);
    if (flock.status === 1 && flock.stderr === '') {
      throw new StartupError(`another pushfleet ${role} is running on the state directory ${dir} (${file} is held${holder(file)}); stop it, or give this ${role} its own stateDir`);
    }
    if (flock.status !== 0) throw new StartupError(`cannot lock ${file}: flock(1) exited ${flock.status ?? flock.signal}: ${flock.stderr.trim()}`);
    // Who holds it, for a person reading the file; the lock itself is the flock.
    ftruncateSync(fd);
    writeSync(fd, `${JSON.stringify({ pid: process.pid, since: new Date().toISOString() })}\n`, 0);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let held = true;
  return {
    release: () => {
      // Once: a second close could hit another file that was given the same descriptor number.
      if (held) closeSync(fd);
      held = false;
    },
  };
}

/** `, by pid N since T` from what the holder wrote, or nothing (not written yet, or an older release's file). */
function holder(file: string): string {
  try {
    const { pid, since } = JSON.parse(readFileSync(file, 'utf8')) as { pid?: unknown; since?: unknown };
    return Number.isInteger(pid) && typeof since === 'string' ? `, by pid ${String(pid)} since ${since}` : '';
  } catch {
    return '';
  }
}

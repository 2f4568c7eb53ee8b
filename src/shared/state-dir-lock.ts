import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StartupError } from './startup.js';

export type StateDirLock = { release(): void };

/**
 * Holds `<dir>/<role>.lock`, so a second process cannot share the state dir: two agents would run
 * one app's update twice in one working copy, two hubs would each answer for a broker the other
 * one's subscribers never see. The lock is SQLite's (fcntl) on a file of its own: the kernel drops
 * it when the process dies, even by kill -9, so a stale lock never needs a person, and the state
 * files themselves stay readable by other tools.
 */
export function lockStateDir(dir: string, role: 'hub' | 'agent'): StateDirLock {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${role}.lock`);
  const db = new Database(file, { timeout: 0 });
  try {
    // In this mode the lock taken by the first write is kept until the connection closes.
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, since TEXT NOT NULL)');
    db.transaction(() => {
      db.prepare('DELETE FROM holder').run();
      db.prepare('INSERT INTO holder (pid, since) VALUES (?, ?)').run(process.pid, new Date().toISOString());
    })();
  } catch (err) {
    db.close();
    if ((err as { code?: unknown }).code === 'SQLITE_BUSY') {
      throw new StartupError(`another pushfleet ${role} is running on the state directory ${dir} (${file} is held); stop it, or give this ${role} its own stateDir`);
    }
    throw err;
  }
  return { release: () => db.close() };
}

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { firstLine, StartupError } from '../shared/startup.js';

export type StateDb = Database.Database;

export const stateDbFile = (stateDir: string): string => join(stateDir, 'hub.sqlite');

/** The hub's durable state, one SQLite file under the state directory. */
export function openStateDb(stateDir: string): StateDb {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const db = new Database(stateDbFile(stateDir));
  try {
    // The first statement reads the file: a damaged one fails here, not at open.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/**
 * Says in one line why the hub cannot use its state directory or database, for an error met
 * while opening them or while the hub's stores and engines first read them; undefined for any
 * other error.
 */
export function stateDbStartupError(stateDir: string, err: unknown): StartupError | undefined {
  const file = stateDbFile(stateDir);
  const code = (err as { code?: unknown }).code;
  if (err instanceof Database.SqliteError) {
    if (code === 'SQLITE_NOTADB' || String(code).startsWith('SQLITE_CORRUPT')) {
      return new StartupError(`cannot open the state database ${file}: ${err.message}; move it (with any -wal and -shm file beside it) away to start afresh`, 2);
    }
    // Permissions need a person; a full disk or an I/O error may pass, and a restart may then work.
    const forAPerson = /^SQLITE_(READONLY|PERM|CANTOPEN|AUTH)/.test(String(code));
    return new StartupError(`cannot open the state database ${file}: ${err.message} (${String(code)}); check that the hub's user can write ${stateDir} and that the disk has room`, forAPerson ? 2 : 1);
  }
  // better-sqlite3 loads its native module on the first open: an install for another Node, or
  // one made with --ignore-scripts, fails here.
  const message = firstLine(err);
  if (code === 'ERR_DLOPEN_FAILED' || /bindings file|NODE_MODULE_VERSION|better_sqlite3\.node/.test(message)) {
    return new StartupError(`cannot load the SQLite native module (${message}); reinstall with "npm ci" (or "npm rebuild better-sqlite3") for this Node (${process.version})`, 2);
  }
  const path = (err as { path?: unknown }).path;
  if (typeof code === 'string' && typeof path === 'string' && path.startsWith(stateDir)) {
    return new StartupError(`cannot use the state directory ${stateDir}: ${message}`, code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 2 : 1);
  }
  return undefined;
}

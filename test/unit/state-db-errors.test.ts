import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { stateDbStartupError } from '../../src/hub/state-db.js';

const dir = '/var/lib/pushfleet';
const sqlite = (message: string, code: string) => new Database.SqliteError(message, code);

describe('stateDbStartupError: why the hub cannot use its state, in one line', () => {
  it('a damaged file: move it away; a restart cannot help (2)', () => {
    for (const err of [sqlite('file is not a database', 'SQLITE_NOTADB'), sqlite('database disk image is malformed', 'SQLITE_CORRUPT')]) {
      const e = stateDbStartupError(dir, err)!;
      expect(e.message).toBe(`cannot open the state database ${dir}/hub.sqlite: ${err.message}; move it (with any -wal and -shm file beside it) away to start afresh`);
      expect(e.exitCode).toBe(2);
    }
  });

  it('permissions need a person (2); a full disk may pass (1)', () => {
    expect(stateDbStartupError(dir, sqlite('attempt to write a readonly database', 'SQLITE_READONLY'))?.exitCode).toBe(2);
    const full = stateDbStartupError(dir, sqlite('database or disk is full', 'SQLITE_FULL'))!;
    expect(full.message).toBe(`cannot open the state database ${dir}/hub.sqlite: database or disk is full (SQLITE_FULL); check that the hub's user can write ${dir} and that the disk has room`);
    expect(full.exitCode).toBe(1);
  });

  it('a native module that does not load: reinstall (2), the first line of the loader only', () => {
    const err = new Error("The module '/opt/pushfleet/node_modules/better-sqlite3/build/Release/better_sqlite3.node'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION 115.");
    const e = stateDbStartupError(dir, Object.assign(err, { code: 'ERR_DLOPEN_FAILED' }))!;
    expect(e.message).toMatch(/^cannot load the SQLite native module \(The module '.*better_sqlite3\.node'\); reinstall with "npm ci" \(or "npm rebuild better-sqlite3"\) for this Node \(v\d+/);
    expect(e.exitCode).toBe(2);
  });

  it('a file system error in the state directory names it; any other error is left alone', () => {
    const eacces = Object.assign(new Error(`EACCES: permission denied, mkdir '${dir}'`), { code: 'EACCES', path: dir });
    expect(stateDbStartupError(dir, eacces)).toMatchObject({ message: `cannot use the state directory ${dir}: EACCES: permission denied, mkdir '${dir}'`, exitCode: 2 });
    expect(stateDbStartupError(dir, Object.assign(new Error('ENOENT'), { code: 'ENOENT', path: '/etc/pushfleet/ca.pem' }))).toBeUndefined();
    expect(stateDbStartupError(dir, new TypeError('x is undefined'))).toBeUndefined();
  });
});

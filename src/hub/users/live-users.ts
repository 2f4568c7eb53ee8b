import { unwatchFile, watchFile } from 'node:fs';
import type { Logger } from '../../shared/logger.js';
import { readUsers, type UserEntry, type Users } from './users-file.js';

/**
 * The users file as the broker sees it now: read at start (a damaged file fails the start), then
 * read again whenever it changes on disk (polled with stat, which sees an atomic rename as well as
 * an edit in place). A file that turns bad later is reported and the last good users stay.
 */
export class LiveUsers {
  private current: Users = new Map();

  constructor(
    readonly file: string,
    private readonly log: Logger,
    /** Names whose account is gone or changed (password or role): their sessions must end. */
    private readonly onChanged: (names: string[]) => void,
    private readonly pollMs = 500,
  ) {}

  get users(): Users {
    return this.current;
  }

  start(): void {
    this.current = readUsers(this.file);
    watchFile(this.file, { interval: this.pollMs, persistent: false }, () => this.reload());
  }

  stop(): void {
    unwatchFile(this.file);
  }

  reload(): void {
    let next: Users;
    try {
      next = readUsers(this.file);
    } catch (err) {
      this.log.error({ file: this.file, err: (err as Error).message }, 'users file not reloaded; the broker keeps the users it had');
      return;
    }
    const changed = [...this.current].filter(([name, before]) => !sameAccount(before, next.get(name))).map(([name]) => name);
    this.current = next;
    this.log.info({ file: this.file, users: next.size, changed: changed.length }, 'users file reloaded');
    if (changed.length) this.onChanged(changed);
  }
}

const sameAccount = (a: UserEntry, b: UserEntry | undefined): boolean => b !== undefined && a.role === b.role && a.password.hash === b.password.hash && a.password.salt === b.password.salt;

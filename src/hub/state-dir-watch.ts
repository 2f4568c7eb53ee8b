import { statSync, watch, type FSWatcher } from 'node:fs';

/** A file's identity: the same path with another dev/inode is another file. */
export type FileIdentity = { dev: bigint; ino: bigint };
/** What a look at a path found; `unknown` when it could not be looked at (e.g. EACCES). */
export type Seen = FileIdentity | 'missing' | 'unknown';
type Opened = { dir: FileIdentity; db: FileIdentity };

const RESTART = 'restart the hub with its state dir';
const same = (a: FileIdentity, b: FileIdentity) => a.dev === b.dev && a.ino === b.ino;

/**
 * What is wrong, if anything, when the state directory or the database file in it is no longer
 * the one the hub opened: the hub would go on writing into a deleted (or another) database, and
 * after a restart remember none of it.
 */
export function stateDirProblem(paths: { dir: string; db: string }, opened: Opened, now: { dir: Seen; db: Seen }): string | undefined {
  if (now.dir === 'missing') return `state directory ${paths.dir} is gone; ${RESTART}`;
  if (now.dir !== 'unknown' && !same(now.dir, opened.dir)) return `state directory ${paths.dir} was replaced; ${RESTART}`;
  if (now.db === 'missing') return `state database ${paths.db} was removed; ${RESTART}`;
  if (now.db !== 'unknown' && !same(now.db, opened.db)) return `state database ${paths.db} was replaced; ${RESTART}`;
  return undefined;
}

function look(path: string): Seen {
  try {
    const s = statSync(path, { bigint: true, throwIfNoEntry: false });
    return s ? { dev: s.dev, ino: s.ino } : 'missing';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'missing' : 'unknown';
  }
}

/**
 * Notices the state directory or its database being removed or replaced under a running hub:
 * a stat of both about every second, and soon after fs.watch reports a change in the directory
 * (fs.watch alone misses some cases, e.g. a parent directory renamed). Once lost it
 * stays lost: the open database is not the one at the path any more, whatever comes back there.
 */
export class StateDirWatch {
  private problem: string | undefined;
  private opened: Opened | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private soon: NodeJS.Timeout | undefined;

  constructor(
    private readonly paths: { dir: string; db: string },
    private readonly onLost: (problem: string) => void,
    private readonly intervalMs = 1000,
  ) {}

  /** What is wrong, or undefined while the state directory is the one the hub opened. */
  get lost(): string | undefined {
    return this.problem;
  }

  /** Call right after the database was opened: what is there now is what the hub uses. */
  start(): void {
    const dir = look(this.paths.dir);
    const db = look(this.paths.db);
    if (typeof dir === 'string' || typeof db === 'string') throw new Error(`cannot stat ${this.paths.dir} or ${this.paths.db}`);
    this.opened = { dir, db };
    this.timer = setInterval(() => this.check(), this.intervalMs).unref();
    try {
      // A moment later: an `rm -r` in progress is then done, and is reported as the directory gone.
      this.watcher = watch(this.paths.dir, () => {
        this.soon ??= setTimeout(() => {
          this.soon = undefined;
          this.check();
        }, 100).unref();
      });
      this.watcher.on('error', () => this.watcher?.close()).unref();
    } catch {
      // Not every file system supports watching; the periodic check still runs.
    }
  }

  check(): void {
    if (this.problem !== undefined || !this.opened) return;
    this.problem = stateDirProblem(this.paths, this.opened, { dir: look(this.paths.dir), db: look(this.paths.db) });
    if (this.problem === undefined) return;
    this.stop();
    this.onLost(this.problem);
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.soon);
    this.watcher?.close();
  }
}

import type { StateDb } from '../../state-db.js';

/** A job as persisted: all a restarted hub needs to re-arm it. Times are epoch milliseconds. */
export type StoredJob = {
  channel: string;
  uid: string;
  /** The topic prefix the client used ("coordinosaur" or "/coordinosaur"); replies go there. */
  route: string;
  timeoutMs: number;
  registeredAt: number;
  queueDeadline: number | null;
  grantedAt: number | null;
  /** The registration's token (a pushfleet client's), null for a plain coordinosaur client. */
  token: string | null;
};

/** Why the hub took a job out; cancelled: withdrawn by the hub itself (see SemaphoreState.evict). */
export type ExpiryReason = 'timeout' | 'queue-timeout' | 'cancelled';

/**
 * The last ended job of a uid in a channel, kept for `retainEndedSeconds`: while it is kept its
 * retained `expired` (when `reason` is set) stays on the broker, and a register repeating its
 * token is recognised as a late copy instead of starting a new job.
 */
export type EndedJob = {
  channel: string;
  uid: string;
  route: string;
  token: string | null;
  reason: ExpiryReason | null;
  at: number;
};

/** An ended job that expired: its `expired/{uid}` is retained while it is kept. */
export type KeptExpiry = EndedJob & { reason: ExpiryReason };
export const isKeptExpiry = (job: EndedJob): job is KeptExpiry => job.reason !== null;

export type StoredState = {
  jobs: StoredJob[];
  /** Oldest first. */
  ended: EndedJob[];
  grants: { channel: string; at: number }[];
  concurrency: { channel: string; max: number }[];
};

/** Where the semaphore keeps its state; SQLite in the hub, the same class over `:memory:` in unit tests. */
export interface SemaphoreStore {
  insertJob(job: StoredJob): void;
  markGranted(channel: string, uid: string, at: number): void;
  /** Deletes the job and, in the same transaction, keeps `ended` as the uid's ended job when given. */
  endJob(channel: string, uid: string, ended: EndedJob | null): void;
  deleteEnded(channel: string, uid: string): void;
  recordGrant(channel: string, at: number): void;
  /** Forgets grant times at or before `before`: they no longer count against any quota. */
  pruneGrants(channel: string, before: number): void;
  setConcurrency(channel: string, max: number | null): void;
  load(): StoredState;
}

/**
 * Each change runs through `write`: at once (its own autocommit, the default), or queued into the
 * turn's transaction (the engine's GroupCommit), which commits before the events it causes are sent.
 */
export class SqliteSemaphoreStore implements SemaphoreStore {
  private readonly stmt;
  private readonly end: (channel: string, uid: string, ended: EndedJob | null) => void;

  constructor(
    private readonly db: StateDb,
    private readonly write: (change: () => void) => void = (change) => change(),
  ) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS semaphore_jobs (
        channel TEXT NOT NULL, uid TEXT NOT NULL, route TEXT NOT NULL, timeout_ms INTEGER NOT NULL,
        registered_at INTEGER NOT NULL, queue_deadline INTEGER, granted_at INTEGER,
        PRIMARY KEY (channel, uid));
      CREATE TABLE IF NOT EXISTS semaphore_grants (channel TEXT NOT NULL, at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS semaphore_grants_by_channel ON semaphore_grants (channel, at);
      CREATE TABLE IF NOT EXISTS semaphore_concurrency (channel TEXT PRIMARY KEY, max INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS semaphore_ended (
        channel TEXT NOT NULL, uid TEXT NOT NULL, route TEXT NOT NULL, token TEXT, reason TEXT, at INTEGER NOT NULL,
        PRIMARY KEY (channel, uid));
    `);
    // Hubs before tokens made the jobs table without one.
    const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('semaphore_jobs')").all();
    if (!columns.some((c) => c.name === 'token')) db.exec('ALTER TABLE semaphore_jobs ADD COLUMN token TEXT');
    this.end = db.transaction((channel: string, uid: string, ended: EndedJob | null) => {
      this.stmt.remove.run(channel, uid);
      if (ended) this.stmt.keepEnded.run(ended);
    });
    this.stmt = {
      insert: db.prepare(
        'INSERT INTO semaphore_jobs (channel, uid, route, timeout_ms, registered_at, queue_deadline, granted_at, token) VALUES (@channel, @uid, @route, @timeoutMs, @registeredAt, @queueDeadline, @grantedAt, @token)',
      ),
      grant: db.prepare('UPDATE semaphore_jobs SET granted_at = ? WHERE channel = ? AND uid = ?'),
      remove: db.prepare('DELETE FROM semaphore_jobs WHERE channel = ? AND uid = ?'),
      keepEnded: db.prepare(
        'INSERT INTO semaphore_ended (channel, uid, route, token, reason, at) VALUES (@channel, @uid, @route, @token, @reason, @at) ON CONFLICT(channel, uid) DO UPDATE SET route = excluded.route, token = excluded.token, reason = excluded.reason, at = excluded.at',
      ),
      dropEnded: db.prepare('DELETE FROM semaphore_ended WHERE channel = ? AND uid = ?'),
      record: db.prepare('INSERT INTO semaphore_grants (channel, at) VALUES (?, ?)'),
      prune: db.prepare('DELETE FROM semaphore_grants WHERE channel = ? AND at <= ?'),
      setMax: db.prepare('INSERT INTO semaphore_concurrency (channel, max) VALUES (?, ?) ON CONFLICT(channel) DO UPDATE SET max = excluded.max'),
      clearMax: db.prepare('DELETE FROM semaphore_concurrency WHERE channel = ?'),
      // rowid grows with each insert, so it keeps every channel's FIFO order across restarts.
      jobs: db.prepare<[], StoredJob>(
        'SELECT channel, uid, route, timeout_ms AS timeoutMs, registered_at AS registeredAt, queue_deadline AS queueDeadline, granted_at AS grantedAt, token FROM semaphore_jobs ORDER BY rowid',
      ),
      ended: db.prepare<[], EndedJob>('SELECT channel, uid, route, token, reason, at FROM semaphore_ended ORDER BY at'),
      grants: db.prepare<[], { channel: string; at: number }>('SELECT channel, at FROM semaphore_grants ORDER BY at'),
      concurrency: db.prepare<[], { channel: string; max: number }>('SELECT channel, max FROM semaphore_concurrency'),
    };
  }

  insertJob(job: StoredJob): void {
    this.write(() => this.stmt.insert.run(job));
  }

  markGranted(channel: string, uid: string, at: number): void {
    this.write(() => this.stmt.grant.run(at, channel, uid));
  }

  endJob(channel: string, uid: string, ended: EndedJob | null): void {
    // Without a row to keep, one statement suffices: the common case stays cheap.
    this.write(() => (ended ? this.end(channel, uid, ended) : this.stmt.remove.run(channel, uid)));
  }

  deleteEnded(channel: string, uid: string): void {
    this.write(() => this.stmt.dropEnded.run(channel, uid));
  }

  recordGrant(channel: string, at: number): void {
    this.write(() => this.stmt.record.run(channel, at));
  }

  pruneGrants(channel: string, before: number): void {
    this.write(() => this.stmt.prune.run(channel, before));
  }

  setConcurrency(channel: string, max: number | null): void {
    this.write(() => (max === null ? this.stmt.clearMax.run(channel) : this.stmt.setMax.run(channel, max)));
  }

  load(): StoredState {
    return { jobs: this.stmt.jobs.all(), ended: this.stmt.ended.all(), grants: this.stmt.grants.all(), concurrency: this.stmt.concurrency.all() };
  }
}

import type Database from 'better-sqlite3';
import type { AuditEntry } from './audit-entry.js';

export type AuditPage = { items: AuditEntry[]; total: number; offset: number; limit: number };

type Row = {
  id: number; at: number; last_at: number; count: number; kind: string; via: string; who: string | null; identity: string;
  address: string | null; action: string; target: string | null; outcome: string; reason: string | null;
};

/** The audit table in the hub's state database (times in ms since the epoch). */
export function createAuditTable(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, at INTEGER NOT NULL, last_at INTEGER NOT NULL, count INTEGER NOT NULL,
    kind TEXT NOT NULL, via TEXT NOT NULL, who TEXT, identity TEXT NOT NULL, address TEXT,
    action TEXT NOT NULL, target TEXT, outcome TEXT NOT NULL, reason TEXT)`);
  db.exec('CREATE INDEX IF NOT EXISTS audit_last_at ON audit (last_at)');
}

export type AuditQuery = { since?: number; offset: number; limit: number; order?: 'oldest' | 'newest' };

/**
 * Reads the audit table: the hub's API through its AuditLog, and `pushfleet audit` on the hub's
 * machine through a read-only connection of its own (the hub need not run).
 */
export class AuditReader {
  private readonly count;
  private readonly oldest;
  private readonly newest;

  constructor(db: Database.Database) {
    this.count = db.prepare<[number], { n: number }>('SELECT COUNT(*) AS n FROM audit WHERE last_at >= ?');
    this.oldest = db.prepare<[number, number, number], Row>('SELECT * FROM audit WHERE last_at >= ? ORDER BY id LIMIT ? OFFSET ?');
    this.newest = db.prepare<[number, number, number], Row>('SELECT * FROM audit WHERE last_at >= ? ORDER BY id DESC LIMIT ? OFFSET ?');
  }

  /** Entries whose last repeat is at or after `since` (ms), oldest first (an export) or newest first (what happened lately). */
  list({ since = 0, offset, limit, order = 'oldest' }: AuditQuery): AuditPage {
    const total = this.count.get(since)?.n ?? 0;
    return { items: (order === 'newest' ? this.newest : this.oldest).all(since, limit, offset).map(entryOf), total, offset, limit };
  }
}

function entryOf(row: Row): AuditEntry {
  const { last_at: lastAt, at, ...rest } = row;
  return { ...rest, at: new Date(at).toISOString(), lastAt: new Date(lastAt).toISOString() } as AuditEntry;
}

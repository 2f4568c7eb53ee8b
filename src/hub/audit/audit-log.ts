import type { StateDb } from '../state-db.js';
import type { TickBatch } from '../tick-batch.js';
import { boundedInput, type AuditInput } from './audit-entry.js';
import { AuditReader, createAuditTable, type AuditPage } from './audit-reader.js';
import { COALESCE_DEFAULTS, Coalescer, type CoalescerOptions, type LiveRow } from './coalescer.js';

export type AuditLogOptions = {
  /** Entries kept at most: past it the oldest go (audit.maxEntries). */
  maxEntries: number;
  /** Entries whose last repeat is older than this go, at start and hourly (audit.maxAgeDays). */
  maxAgeDays: number;
  coalesce?: Partial<CoalescerOptions>;
  now?: () => number;
  /** After each commit that added or changed entries (the hub's HubEvents `audit` notice). */
  onChanged?: () => void;
  onError?: (err: unknown, what: string) => void;
};


/** Entries held in memory while commits fail (a full disk), at most; the oldest go first. */
const MAX_UNSAVED = 10_000;
const REPORT_EVERY_MS = 10_000;

/**
 * The hub's audit log: one table in the state database. Entries are written in the hub's tick
 * batch (all entries of one event-loop turn in one commit, with the deliveries and heads of that
 * turn), so recording never costs a commit per message; `record` resolves once the entry is
 * committed, so a caller that waits for it before answering has it on disk when it answers.
 * Repeats are coalesced (coalescer.ts); the table holds at most `maxEntries` rows, pruned in the
 * same commit that adds new ones.
 */
export class AuditLog {
  private readonly coalescer: Coalescer;
  private readonly now: () => number;
  private lastId: number;
  private prunedTo = 0;
  /** Rows changed this turn, and the commit they wait for. */
  private group: { rows: Set<LiveRow>; committed: Promise<void> } | undefined;
  /** Rows of a commit that failed (a full disk): written again with the next group, the newest MAX_UNSAVED. */
  private unsaved = new Set<LiveRow>();
  private lost = 0;
  private reportedAt = Number.NEGATIVE_INFINITY;
  private readonly upsert;
  private readonly pruneBelow;
  private readonly pruneBefore;
  private readonly reader: AuditReader;

  constructor(
    db: StateDb,
    private readonly batch: TickBatch,
    private readonly opts: AuditLogOptions,
  ) {
    createAuditTable(db);
    this.reader = new AuditReader(db);
    this.now = opts.now ?? Date.now;
    this.lastId = db.prepare<[], { id: number | null }>('SELECT MAX(id) AS id FROM audit').get()?.id ?? 0;
    this.coalescer = new Coalescer({ ...COALESCE_DEFAULTS, ...opts.coalesce }, () => ++this.lastId);
    // The same statement inserts a new entry and counts a repeat: a retried commit writes the same row again.
    this.upsert = db.prepare(`INSERT INTO audit (id, at, last_at, count, kind, via, who, identity, address, action, target, outcome, reason)
      VALUES (@id, @at, @lastAt, @count, @kind, @via, @who, @identity, @address, @action, @target, @outcome, @reason)
      ON CONFLICT(id) DO UPDATE SET last_at = excluded.last_at, count = excluded.count`);
    this.pruneBelow = db.prepare('DELETE FROM audit WHERE id <= ?');
    this.pruneBefore = db.prepare('DELETE FROM audit WHERE last_at < ?');
  }

  /** Records `input`; resolves once it is committed, rejects if it could not be (it is tried again with the next entry). */
  record(input: AuditInput): Promise<void> {
    const row = this.coalescer.add(boundedInput(input), this.now());
    if (!this.group) {
      const rows = this.unsaved;
      this.unsaved = new Set();
      const committed = this.batch.run(() => this.write(rows));
      this.group = { rows, committed };
      committed.then(
        () => this.opts.onChanged?.(),
        (err: unknown) => this.keepUnsaved(rows, err),
      );
    }
    this.group.rows.add(row);
    return this.group.committed;
  }

  /** Rows whose commit failed wait for the next one, within a bound; reported at most every REPORT_EVERY_MS. */
  private keepUnsaved(rows: Set<LiveRow>, err: unknown): void {
    if (this.unsaved.size === 0) this.unsaved = rows;
    else for (const r of rows) this.unsaved.add(r);
    for (; this.unsaved.size > MAX_UNSAVED; this.lost++) this.unsaved.delete(this.unsaved.values().next().value!);
    const now = this.now();
    if (now - this.reportedAt < REPORT_EVERY_MS) return;
    this.reportedAt = now;
    this.opts.onError?.(err, `audit entries could not be written: ${this.unsaved.size} wait for the next commit${this.lost ? `, ${this.lost} oldest dropped so far` : ''}`);
  }

  /** Records `input` without waiting: for refusals, whose answer does not depend on the entry. */
  note(input: AuditInput): void {
    // A failure is reported (at most every REPORT_EVERY_MS) by record's own handler.
    this.record(input).catch(() => undefined);
  }

  private write(rows: Set<LiveRow>): void {
    if (this.group?.rows === rows) this.group = undefined;
    for (const row of rows) this.upsert.run(row);
    const line = this.lastId - this.opts.maxEntries;
    if (line > this.prunedTo) {
      this.pruneBelow.run(line);
      this.prunedTo = line;
      this.coalescer.forgetUpTo(line);
    }
  }

  /** Entries whose last repeat is at or after `since` (ms), oldest first. */
  list(query: { since?: number; offset: number; limit: number }): AuditPage {
    return this.reader.list(query);
  }

  /** Drops entries older than audit.maxAgeDays; run at start and hourly. */
  pruneOld(): Promise<void> {
    return this.batch.run(() => void this.pruneBefore.run(this.now() - this.opts.maxAgeDays * 86_400_000));
  }
}

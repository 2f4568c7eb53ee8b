import type { StateDb } from '../state-db.js';
import type { TickBatch } from '../tick-batch.js';

export type DeliveryOutcome = { duplicate: boolean; topic: string };

/**
 * Remembers GitHub deliveries that were published, so a redelivery publishes nothing twice.
 * A delivery is recorded only after the broker acknowledged it: one that failed (503) can be
 * redelivered and goes through. Concurrent copies of one delivery share the first one's work.
 * The record is written with the other writes of its event-loop turn (one commit), and the
 * delivery stays in flight until that commit: a copy arriving meanwhile is still a duplicate.
 */
export class DeliveryLog {
  private readonly inFlight = new Map<string, Promise<DeliveryOutcome>>();
  private readonly find;
  private readonly insert;
  private readonly prune;

  constructor(
    db: StateDb,
    private readonly batch: TickBatch,
    private readonly retainDays = 30,
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS deliveries (
      id TEXT PRIMARY KEY, topic TEXT NOT NULL, received_at INTEGER NOT NULL)`);
    this.find = db.prepare<[string], { topic: string }>('SELECT topic FROM deliveries WHERE id = ?');
    this.insert = db.prepare('INSERT OR IGNORE INTO deliveries (id, topic, received_at) VALUES (?, ?, ?)');
    this.prune = db.prepare('DELETE FROM deliveries WHERE received_at < ?');
  }

  get pending(): number {
    return this.inFlight.size;
  }

  /** Runs `publish` once per delivery id; later copies get the first outcome marked duplicate. */
  async once(id: string, topic: string, publish: () => Promise<void>): Promise<DeliveryOutcome> {
    const running = this.inFlight.get(id);
    if (running) return running.then((o) => ({ ...o, duplicate: true }));
    const seen = this.find.get(id);
    if (seen) return { duplicate: true, topic: seen.topic };
    const work = publish()
      .then(() => this.batch.run(() => this.insert.run(id, topic, Date.now())))
      .then(() => ({ duplicate: false, topic }));
    this.inFlight.set(id, work);
    try {
      return await work;
    } finally {
      this.inFlight.delete(id);
    }
  }

  /** Drops records older than GitHub would redeliver; run at start and daily. */
  pruneOld(now = Date.now()): number {
    return this.prune.run(now - this.retainDays * 86_400_000).changes;
  }
}

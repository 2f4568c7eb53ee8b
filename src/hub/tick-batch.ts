import type { StateDb } from './state-db.js';

/**
 * Groups the hub's small SQLite writes: every write asked for during one event-loop turn runs in
 * one transaction at the next `setImmediate`, and each caller's promise settles once that
 * transaction committed. Under load this turns one commit per webhook (delivery id, retained
 * head) into one commit per turn; a single write waits only for the end of its turn.
 */
export class TickBatch {
  private queue: { write: () => void; done: (err?: unknown) => void }[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private readonly commit;

  constructor(db: StateDb) {
    this.commit = db.transaction((writes: (() => void)[]) => {
      for (const write of writes) write();
    });
  }

  /** Runs `write` in the next batch's transaction; resolves when it committed. */
  run(write: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, done: (err) => (err === undefined ? resolve() : reject(err)) });
      this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  /** Commits what is queued now; also called at stop so no queued write is lost. */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const queue = this.queue;
    if (queue.length === 0) return;
    this.queue = [];
    try {
      this.commit(queue.map((q) => q.write));
    } catch {
      // One bad write must not fail the others: run them one by one, each in its own commit.
      for (const q of queue) {
        try {
          q.write();
        } catch (err) {
          q.done(err ?? new Error('write failed'));
          continue;
        }
        q.done();
      }
      return;
    }
    for (const q of queue) q.done();
  }
}

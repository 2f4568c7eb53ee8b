import type { Statement as Prepared } from 'better-sqlite3';
import type { StateDb } from '../../state-db.js';
import type { Service, ServiceStore } from './model.js';
import { createSteps, DEFAULT_HISTORY, loadSteps, removeSteps, saveSteps, schemaSteps, ServiceStoreError, type Outcome, type Statement, type Steps } from './sql-store.js';

/**
 * The services store in the hub's SQLite file (the default). better-sqlite3 is synchronous, so
 * each operation's steps run to the end inside one transaction before anything else in the hub
 * touches the database: no other engine's statement can land inside it.
 */
export class SqliteServiceStore implements ServiceStore {
  private readonly prepared = new Map<string, Prepared>();
  private closed = false;

  constructor(
    private readonly db: StateDb,
    private readonly opts: { historyLimit?: number } = {},
  ) {
    this.run(schemaSteps(), 'write');
  }

  load(): Promise<Service[]> {
    return this.attempt(() => this.run(loadSteps(), 'read'));
  }

  create(service: Service): Promise<Service> {
    return this.attempt(() => this.run(createSteps(service, this.historyLimit), 'write'));
  }

  save(service: Service): Promise<void> {
    return this.attempt(() => this.run(saveSteps(service, this.historyLimit), 'write'));
  }

  remove(name: string): Promise<void> {
    return this.attempt(() => this.run(removeSteps(name), 'write'));
  }

  /** The database is the hub's: closing the store only ends its use of it. */
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private get historyLimit(): number {
    return this.opts.historyLimit ?? DEFAULT_HISTORY;
  }

  private attempt<T>(op: () => T): Promise<T> {
    try {
      if (this.closed) throw new ServiceStoreError('the services store is closed');
      return Promise.resolve(op());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** IMMEDIATE for writes: the write lock is taken at BEGIN, never upgraded half-way (SQLITE_BUSY). */
  private run<T>(steps: Steps<T>, mode: 'read' | 'write'): T {
    const tx = this.db.transaction(() => {
      let next = steps.next();
      while (!next.done) next = steps.next(this.exec(next.value));
      return next.value;
    });
    return mode === 'write' ? tx.immediate() : tx.deferred();
  }

  private exec(st: Statement): Outcome {
    let stmt = this.prepared.get(st.sql);
    if (!stmt) this.prepared.set(st.sql, (stmt = this.db.prepare(st.sql)));
    if (stmt.reader) {
      const rows = stmt.all(...st.args) as Record<string, unknown>[];
      return { changes: rows.length, rows };
    }
    return { changes: stmt.run(...st.args).changes, rows: [] };
  }
}

import pg from 'pg';
import { redactUrlPassword, type Logger } from '../../../shared/logger.js';
import { redactUrl } from '../../../shared/mqtt-url.js';
import { firstLine } from '../../../shared/startup.js';
import type { Service, ServiceStore } from './model.js';
import { createSteps, DEFAULT_HISTORY, loadSteps, removeSteps, saveSteps, schemaSteps, ServiceStoreError, type Statement, type Steps } from './sql-store.js';

/** The database cannot be reached or refuses us: said in one line, naming the config key, with the URL's password hidden. */
export class ServiceStoreUnavailable extends ServiceStoreError {
  override name = 'ServiceStoreUnavailable';
}

export type PostgresStoreOptions = {
  historyLimit?: number;
  log?: Logger;
  /** Connections held at most (default 4: the engine's writes are small and mostly one at a time). */
  maxConnections?: number;
  /** Milliseconds to wait for a connection before the operation fails (default 5000). */
  connectTimeoutMs?: number;
  /**
   * Milliseconds a statement may wait for its answer (default 10000): a stalled server fails the
   * operation, and drops its connection, instead of holding the engine forever.
   */
  queryTimeoutMs?: number;
};

const KEY = 'engines.services.postgresUrl';
/** Two hubs starting at once must not both create the tables (CREATE … IF NOT EXISTS races in PostgreSQL). */
const SCHEMA_LOCK = 0x7075_7368; // "push"
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOENT']);

/**
 * The services store in PostgreSQL (`engines.services.postgresUrl`): the same schema and steps as
 * the SQLite store, each operation one transaction on one pooled connection. A connection lost
 * mid-operation is dropped from the pool and the operation fails with ServiceStoreUnavailable;
 * the next one connects afresh, so the store recovers by itself once the server is back. A failed
 * operation may still have committed (the reply lost with the connection): save and create are
 * safe to retry.
 */
export class PostgresServiceStore implements ServiceStore {
  private readonly pool: pg.Pool;
  private readonly names = new Map<string, string>();

  private constructor(
    private readonly url: string,
    private readonly opts: PostgresStoreOptions,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: opts.maxConnections ?? 4, connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000, query_timeout: opts.queryTimeoutMs ?? 10_000, keepAlive: true });
    // An idle connection's server going away is reported here; without a listener it would crash the hub.
    this.pool.on('error', (err) => opts.log?.warn({ err: firstLine(err) }, `services store: an idle PostgreSQL connection was lost (${KEY} ${redactUrl(url)})`));
  }

  /** Connects and creates the tables if they are missing; rejects with one line if the database cannot be used. */
  static async open(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresServiceStore> {
    const store = new PostgresServiceStore(url, opts);
    try {
      await store.transaction(lockedSchemaSteps(), 'BEGIN');
    } catch (err) {
      await store.pool.end().catch(() => undefined);
      throw err;
    }
    return store;
  }

  load(): Promise<Service[]> {
    // One snapshot for both tables: READ COMMITTED would let a save land between the two reads.
    return this.transaction(loadSteps(), 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  }

  create(service: Service): Promise<Service> {
    return this.transaction(createSteps(service, this.historyLimit), 'BEGIN');
  }

  save(service: Service): Promise<void> {
    return this.transaction(saveSteps(service, this.historyLimit), 'BEGIN');
  }

  remove(name: string): Promise<void> {
    return this.transaction(removeSteps(name), 'BEGIN');
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  private get historyLimit(): number {
    return this.opts.historyLimit ?? DEFAULT_HISTORY;
  }

  private async transaction<T>(steps: Steps<T>, begin: string): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.failure(err);
    }
    // A checked-out connection reports its loss as an 'error' event too (the pool only listens on
    // idle ones): unheard, it would crash the hub; the failed query already says what happened.
    const lost = () => undefined;
    client.on('error', lost);
    try {
      await client.query(begin);
      let next = steps.next();
      while (!next.done) next = steps.next(await this.exec(client, next.value));
      await client.query('COMMIT');
      client.release();
      return next.value;
    } catch (err) {
      await rollback(client, err);
      throw this.failure(err);
    } finally {
      client.off('error', lost);
    }
  }

  private async exec(client: pg.PoolClient, st: Statement) {
    let n = 0;
    const text = st.sql.replace(/\?/g, () => `$${++n}`);
    // Named: each connection parses and plans a statement once.
    let name = this.names.get(st.sql);
    if (!name) this.names.set(st.sql, (name = `services_${this.names.size}`));
    const result = await client.query({ name, text, values: [...st.args] });
    return { changes: result.rowCount ?? 0, rows: result.rows as Record<string, unknown>[] };
  }

  private failure(err: unknown): Error {
    if (err instanceof ServiceStoreError) return err;
    const where = `PostgreSQL at ${redactUrl(this.url)} (${KEY})`;
    const reason = redactUrlPassword(describe(err));
    if (isConnectionError(err)) return new ServiceStoreUnavailable(`the services store cannot use ${where}: ${reason}`);
    return new ServiceStoreError(`the services store's ${where} refused an operation: ${reason}`);
  }
}

function* lockedSchemaSteps(): Steps<void> {
  yield { sql: `SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`, args: [] };
  yield* schemaSteps();
}

/** Rolls back a failed transaction; a connection that cannot even do that is dropped, not reused. */
async function rollback(client: pg.PoolClient, err: unknown): Promise<void> {
  if (isConnectionError(err)) return client.release(true);
  try {
    await client.query('ROLLBACK');
    client.release();
  } catch {
    client.release(true);
  }
}

/**
 * Errors of the connection rather than of the statement: the network, the server going away or
 * starting up, and refusals of the URL itself (password, database, too many connections).
 */
function isConnectionError(err: unknown): boolean {
  const code = String((err as { code?: unknown }).code ?? '');
  if (NET_CODES.has(code)) return true;
  if (/^(08|28|3D|57P0)/.test(code) || code === '53300') return true;
  return /Connection terminated|connection timeout|Query read timeout|timeout exceeded when trying to connect|not queryable|Client has encountered a connection error/i.test(firstLine(err));
}

/** One line: Node's AggregateError (every address of a host refused) has an empty message. */
function describe(err: unknown): string {
  const line = firstLine(err);
  const code = (err as { code?: unknown }).code;
  if (line !== '') return typeof code === 'string' && !line.includes(code) ? `${line} (${code})` : line;
  const inner = err instanceof AggregateError ? err.errors[0] : undefined;
  return inner ? describe(inner) : String(code ?? 'unknown error');
}

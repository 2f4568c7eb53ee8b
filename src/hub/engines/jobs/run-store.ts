import type { StateDb } from '../../state-db.js';
import { FINISHED, type Run, type RunStatus } from './model.js';

/** A finished run's remaining duties, in order: keep its logs, announce it, free what it holds. */
export type Duties = { logsKept: boolean; announced: boolean; removed: boolean };

/** Where a trigger came from over MQTT, to know a broker's redelivery of it (see `redelivered`). */
export type TriggerKey = { messageId: number; digest: string };

type Row = {
  id: string;
  job: string;
  name: string;
  executor: Run['executor'];
  topic: string;
  payload: string;
  params: string;
  status: RunStatus;
  reason: string | null;
  agent: string | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  logs: string | null;
  logs_kept: number;
  announced: number;
  removed: number;
};

const ACTIVE = "('pending', 'running')";

/**
 * The jobs engine's runs, in the hub's SQLite file. A run is written here (pending, with its
 * trigger) in the same synchronous step that handles the trigger, before any executor is asked
 * to start it; every change of status is written before it is acted on or published, so a hub
 * killed at any point finds each run and what is left to do for it.
 */
export class RunStore {
  private readonly stmt;
  private readonly db: StateDb;

  /** `changed`: told the id of each run written (the API's live updates). */
  constructor(
    db: StateDb,
    private readonly changed: (id: string) => void = () => undefined,
  ) {
    this.db = db;
    db.exec(`
      CREATE TABLE IF NOT EXISTS job_runs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, job TEXT NOT NULL, name TEXT NOT NULL,
        executor TEXT NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL, params TEXT NOT NULL,
        status TEXT NOT NULL, reason TEXT, agent TEXT, created_at INTEGER NOT NULL, started_at INTEGER, ended_at INTEGER,
        logs TEXT, logs_kept INTEGER NOT NULL DEFAULT 0, announced INTEGER NOT NULL DEFAULT 0, removed INTEGER NOT NULL DEFAULT 0,
        message_id INTEGER, digest TEXT);
      CREATE INDEX IF NOT EXISTS job_runs_by_job ON job_runs (job, seq);
      CREATE INDEX IF NOT EXISTS job_runs_by_status ON job_runs (status);
      CREATE INDEX IF NOT EXISTS job_runs_by_message ON job_runs (message_id, seq);
    `);
    this.stmt = {
      insert: db.prepare(
        `INSERT INTO job_runs (id, job, name, executor, topic, payload, params, status, reason, agent, created_at, started_at, ended_at, message_id, digest, logs_kept, removed)
         VALUES (@id, @job, @name, @executor, @topic, @payload, @params, @status, @reason, @agent, @createdAt, @startedAt, @endedAt, @messageId, @digest, @settled, @settled)`,
      ),
      update: db.prepare('UPDATE job_runs SET status = @status, reason = @reason, agent = @agent, started_at = @startedAt, ended_at = @endedAt, logs = @logs WHERE id = @id'),
      duty: {
        logsKept: db.prepare('UPDATE job_runs SET logs_kept = 1 WHERE id = ?'),
        announced: db.prepare('UPDATE job_runs SET announced = 1 WHERE id = ?'),
        removed: db.prepare('UPDATE job_runs SET removed = 1 WHERE id = ?'),
      },
      one: db.prepare<[string], Row>('SELECT * FROM job_runs WHERE id = ?'),
      active: db.prepare<[], Row>(`SELECT * FROM job_runs WHERE status IN ${ACTIVE} ORDER BY seq`),
      activeOf: db.prepare<[string], Row>(`SELECT * FROM job_runs WHERE job = ? AND status IN ${ACTIVE} ORDER BY seq`),
      activeCount: db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM job_runs WHERE status IN ${ACTIVE}`),
      byStatus: db.prepare<[], { status: RunStatus; n: number }>('SELECT status, count(*) AS n FROM job_runs GROUP BY status'),
      unfinishedDuties: db.prepare<[], Row>(`SELECT * FROM job_runs WHERE status NOT IN ${ACTIVE} AND (logs_kept = 0 OR announced = 0 OR removed = 0) ORDER BY seq`),
      recent: db.prepare<[number, number], Row>('SELECT * FROM job_runs ORDER BY seq DESC LIMIT ? OFFSET ?'),
      recentOf: db.prepare<[string, number, number], Row>('SELECT * FROM job_runs WHERE job = ? ORDER BY seq DESC LIMIT ? OFFSET ?'),
      count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM job_runs'),
      countOf: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM job_runs WHERE job = ?'),
      lastWithMessage: db.prepare<[number], { topic: string; digest: string | null; id: string }>('SELECT topic, digest, id FROM job_runs WHERE message_id = ? ORDER BY seq DESC LIMIT 1'),
      // Only runs with nothing left to do are forgotten, oldest first.
      beyond: db.prepare<[number], Row>(
        `SELECT * FROM job_runs WHERE status NOT IN ${ACTIVE} AND logs_kept = 1 AND announced = 1 AND removed = 1 ORDER BY seq DESC LIMIT -1 OFFSET ?`,
      ),
      drop: db.prepare('DELETE FROM job_runs WHERE id = ?'),
    };
  }

  /**
   * Records new runs (and the runs they replace, updated) in one transaction. A run recorded
   * already finished (refused by its plan) never reached an executor: only its announcement is left.
   */
  insert(runs: readonly Run[], key?: TriggerKey, updated: readonly Run[] = []): void {
    this.db.transaction(() => {
      for (const run of runs) {
        this.stmt.insert.run({
          ...columns(run),
          job: run.job,
          name: run.name,
          executor: run.executor,
          topic: run.topic,
          payload: run.payload,
          params: JSON.stringify(run.params),
          createdAt: run.createdAt,
          messageId: key?.messageId ?? null,
          digest: key?.digest ?? null,
          settled: isFinished(run) ? 1 : 0,
        });
      }
      for (const run of updated) this.stmt.update.run(columns(run));
    })();
    for (const run of [...runs, ...updated]) this.changed(run.id);
  }

  update(run: Run): void {
    this.stmt.update.run(columns(run));
    this.changed(run.id);
  }

  done(id: string, duty: keyof Duties): void {
    this.stmt.duty[duty].run(id);
  }

  has(id: string): boolean {
    return this.stmt.one.get(id) !== undefined;
  }

  get(id: string): (Run & { duties: Duties }) | undefined {
    const row = this.stmt.one.get(id);
    return row && withDuties(row);
  }

  /** Runs pending or running, oldest first: after a restart, each is started or watched again. */
  active(): Run[] {
    return this.stmt.active.all().map(toRun);
  }

  activeOf(job: string): Run[] {
    return this.stmt.activeOf.all(job).map(toRun);
  }

  get activeCount(): number {
    return this.stmt.activeCount.get()!.n;
  }

  /** The runs kept (active and the history) per status (statuses with none left out). */
  statusCounts(): Partial<Record<RunStatus, number>> {
    return Object.fromEntries(this.stmt.byStatus.all().map((r) => [r.status, r.n]));
  }

  /** Finished runs whose logs, announcement or removal is still to do (a hub killed meanwhile). */
  unfinished(): (Run & { duties: Duties })[] {
    return this.stmt.unfinishedDuties.all().map(withDuties);
  }

  /** Newest first, skipping the `offset` newest. */
  recent(limit: number, job?: string, offset = 0): Run[] {
    return (job === undefined ? this.stmt.recent.all(limit, offset) : this.stmt.recentOf.all(job, limit, offset)).map(toRun);
  }

  /** How many runs are kept (of one job). */
  count(job?: string): number {
    return (job === undefined ? this.stmt.count.get() : this.stmt.countOf.get(job))!.n;
  }

  /**
   * Whether a trigger is the broker's redelivery of one already recorded: MQTT redelivers an
   * unacknowledged QoS 1 message with its packet id and the DUP flag. Packet ids are reused once
   * acknowledged, so only the newest run recorded under this id counts, and only if it came from
   * the same topic with the same payload. Returns that run's id.
   */
  redelivered(topic: string, key: TriggerKey): string | undefined {
    const last = this.stmt.lastWithMessage.get(key.messageId);
    return last && last.topic === topic && last.digest === key.digest ? last.id : undefined;
  }

  /** Forgets all but the newest `keep` runs with nothing left to do; returns those forgotten. */
  prune(keep: number): Run[] {
    const gone = this.stmt.beyond.all(keep).map(toRun);
    this.db.transaction(() => {
      for (const run of gone) this.stmt.drop.run(run.id);
    })();
    return gone;
  }
}

function columns(run: Run) {
  return {
    id: run.id,
    status: run.status,
    reason: run.reason ?? null,
    agent: run.agent ?? null,
    startedAt: run.startedAt ?? null,
    endedAt: run.endedAt ?? null,
    logs: run.logs ?? null,
  };
}

function toRun(row: Row): Run {
  const run: Run = {
    id: row.id,
    job: row.job,
    name: row.name,
    executor: row.executor,
    topic: row.topic,
    payload: row.payload,
    params: JSON.parse(row.params) as Record<string, string>,
    status: row.status,
    createdAt: row.created_at,
  };
  if (row.reason !== null) run.reason = row.reason;
  if (row.agent !== null) run.agent = row.agent;
  if (row.started_at !== null) run.startedAt = row.started_at;
  if (row.ended_at !== null) run.endedAt = row.ended_at;
  if (row.logs !== null) run.logs = row.logs;
  return run;
}

function withDuties(row: Row): Run & { duties: Duties } {
  return { ...toRun(row), duties: { logsKept: row.logs_kept === 1, announced: row.announced === 1, removed: row.removed === 1 } };
}

export const isFinished = (run: Run): boolean => FINISHED.includes(run.status);

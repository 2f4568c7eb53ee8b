import { decode } from '../../../shared/messages.js';
import { RolloutSnapshot } from '../../../shared/contract/rollout-messages.js';
import type { StateDb } from '../../state-db.js';

export type Pin = { agent: string; app: string; sha: string; by: string; at: string };

/**
 * The rollouts' history (each rollout as its latest snapshot), frozen environments and pins, in
 * the hub's SQLite file. Every change is written before it is published.
 */
export class RolloutStore {
  private readonly stmt;

  constructor(db: StateDb) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS rollouts (
        id TEXT PRIMARY KEY, app TEXT NOT NULL, env TEXT NOT NULL, status TEXT NOT NULL,
        created_at TEXT NOT NULL, snapshot TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS rollouts_by_created ON rollouts (created_at);
      CREATE TABLE IF NOT EXISTS rollout_frozen (env TEXT PRIMARY KEY, by TEXT NOT NULL, at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS rollout_pins (agent TEXT NOT NULL, app TEXT NOT NULL, sha TEXT NOT NULL, by TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (agent, app));
    `);
    this.stmt = {
      save: db.prepare(
        'INSERT INTO rollouts (id, app, env, status, created_at, snapshot) VALUES (@id, @app, @env, @status, @createdAt, @snapshot) ON CONFLICT(id) DO UPDATE SET status = excluded.status, snapshot = excluded.snapshot',
      ),
      active: db.prepare<[], { snapshot: string }>("SELECT snapshot FROM rollouts WHERE status IN ('running', 'paused', 'frozen') ORDER BY created_at"),
      recent: db.prepare<[number], { snapshot: string }>('SELECT snapshot FROM rollouts ORDER BY created_at DESC, rowid DESC LIMIT ?'),
      one: db.prepare<[string], { snapshot: string }>('SELECT snapshot FROM rollouts WHERE id = ?'),
      beyond: db.prepare<[number], { id: string }>('SELECT id FROM rollouts ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?'),
      drop: db.prepare('DELETE FROM rollouts WHERE id = ?'),
      freeze: db.prepare('INSERT INTO rollout_frozen (env, by, at) VALUES (?, ?, ?) ON CONFLICT(env) DO NOTHING'),
      unfreeze: db.prepare('DELETE FROM rollout_frozen WHERE env = ?'),
      frozen: db.prepare<[], { env: string }>('SELECT env FROM rollout_frozen ORDER BY env'),
      pin: db.prepare('INSERT INTO rollout_pins (agent, app, sha, by, at) VALUES (@agent, @app, @sha, @by, @at) ON CONFLICT(agent, app) DO UPDATE SET sha = excluded.sha, by = excluded.by, at = excluded.at'),
      unpin: db.prepare('DELETE FROM rollout_pins WHERE agent = ? AND app = ?'),
      pins: db.prepare<[], Pin>('SELECT agent, app, sha, by, at FROM rollout_pins'),
      pinCount: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM rollout_pins'),
      pinned: db.prepare<[string, string], { n: number }>('SELECT count(*) AS n FROM rollout_pins WHERE agent = ? AND app = ?'),
    };
  }

  save(snap: RolloutSnapshot): void {
    this.stmt.save.run({ id: snap.id, app: snap.app, env: snap.env, status: snap.status, createdAt: snap.createdAt, snapshot: JSON.stringify(snap) });
  }

  /** Rollouts that were under way (running, paused or frozen) when the hub stopped. */
  active(): RolloutSnapshot[] {
    return this.parse(this.stmt.active.all());
  }

  recent(limit: number): RolloutSnapshot[] {
    return this.parse(this.stmt.recent.all(limit));
  }

  get(id: string): RolloutSnapshot | undefined {
    return this.parse(this.stmt.one.all(id))[0];
  }

  /** Forgets all but the newest `keep` rollouts; returns the ids forgotten. */
  prune(keep: number): string[] {
    const ids = this.stmt.beyond.all(keep).map((r) => r.id);
    for (const id of ids) this.stmt.drop.run(id);
    return ids;
  }

  freeze(env: string, by: string, at: string): void {
    this.stmt.freeze.run(env, by, at);
  }

  unfreeze(env: string): void {
    this.stmt.unfreeze.run(env);
  }

  frozen(): string[] {
    return this.stmt.frozen.all().map((r) => r.env);
  }

  pin(pin: Pin): void {
    this.stmt.pin.run(pin);
  }

  unpin(agent: string, app: string): void {
    this.stmt.unpin.run(agent, app);
  }

  pins(): Pin[] {
    return this.stmt.pins.all();
  }

  get pinCount(): number {
    return this.stmt.pinCount.get()!.n;
  }

  isPinned(agent: string, app: string): boolean {
    return this.stmt.pinned.get(agent, app)!.n > 0;
  }

  /** A row that no longer parses (written by another version) is skipped, not fatal. */
  private parse(rows: { snapshot: string }[]): RolloutSnapshot[] {
    return rows.flatMap((r) => {
      const d = decode(RolloutSnapshot, r.snapshot);
      return d.ok ? [d.value] : [];
    });
  }
}

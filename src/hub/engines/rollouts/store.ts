import { decode } from '../../../shared/messages.js';
import { RolloutHost, RolloutSnapshot, type HostCounts, type RolloutHostState, type RolloutStatus } from '../../../shared/contract/rollout-messages.js';
import type { StateDb } from '../../state-db.js';

export type Pin = { agent: string; app: string; sha: string; by: string; at: string };

/** What one commit of a rollout writes: its own fields (`hosts` ignored) if they changed, and the hosts that did. */
export type RolloutWrite = { snap: RolloutSnapshot; rollout: boolean; hosts: { pos: number; host: RolloutHost }[] };

type HostRow = { host: string; seq: number; at: string };

/**
 * The rollouts' history, frozen environments and pins, in the hub's SQLite file. A rollout is one
 * row for its own fields (the snapshot JSON without hosts) and one row per host, so a host's
 * change writes that host alone. Each row keeps the seq and time of its last change: the rollout's
 * seq and updatedAt are the highest of them. Every change is written before it is published.
 */
export class RolloutStore {
  private readonly stmt;
  /** `saving`'s statements in a transaction of their own (the migration's). */
  private readonly write: (w: RolloutWrite) => void;
  private readonly drop: (id: string) => void;

  constructor(db: StateDb) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS rollouts (
        id TEXT PRIMARY KEY, app TEXT NOT NULL, env TEXT NOT NULL, status TEXT NOT NULL,
        created_at TEXT NOT NULL, snapshot TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS rollouts_by_created ON rollouts (created_at);
      CREATE TABLE IF NOT EXISTS rollout_hosts (
        rollout TEXT NOT NULL, agent TEXT NOT NULL, pos INTEGER NOT NULL, state TEXT NOT NULL,
        seq INTEGER NOT NULL, at TEXT NOT NULL, host TEXT NOT NULL, PRIMARY KEY (rollout, agent));
      CREATE TABLE IF NOT EXISTS rollout_frozen (env TEXT PRIMARY KEY, by TEXT NOT NULL, at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS rollout_pins (agent TEXT NOT NULL, app TEXT NOT NULL, sha TEXT NOT NULL, by TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (agent, app));
    `);
    this.stmt = {
      save: db.prepare(
        'INSERT INTO rollouts (id, app, env, status, created_at, snapshot) VALUES (@id, @app, @env, @status, @createdAt, @snapshot) ON CONFLICT(id) DO UPDATE SET status = excluded.status, snapshot = excluded.snapshot',
      ),
      saveHost: db.prepare(
        'INSERT INTO rollout_hosts (rollout, agent, pos, state, seq, at, host) VALUES (@rollout, @agent, @pos, @state, @seq, @at, @host) ON CONFLICT(rollout, agent) DO UPDATE SET state = excluded.state, seq = excluded.seq, at = excluded.at, host = excluded.host',
      ),
      hosts: db.prepare<[string], HostRow>('SELECT host, seq, at FROM rollout_hosts WHERE rollout = ? ORDER BY pos'),
      host: db.prepare<[string, string], { host: string }>('SELECT host FROM rollout_hosts WHERE rollout = ? AND agent = ?'),
      status: db.prepare<[string], { status: RolloutStatus }>('SELECT status FROM rollouts WHERE id = ?'),
      counts: db.prepare<[string], { state: RolloutHostState; n: number }>('SELECT state, count(*) AS n FROM rollout_hosts WHERE rollout = ? GROUP BY state'),
      active: db.prepare<[], { snapshot: string }>(
        "SELECT snapshot FROM rollouts WHERE status IN ('running', 'paused', 'frozen') OR id IN (SELECT rollout FROM rollout_hosts WHERE state = 'updating') ORDER BY created_at",
      ),
      recent: db.prepare<[number, number], { snapshot: string }>('SELECT snapshot FROM rollouts ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?'),
      total: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM rollouts'),
      one: db.prepare<[string], { snapshot: string }>('SELECT snapshot FROM rollouts WHERE id = ?'),
      unsplit: db.prepare<[], { snapshot: string }>(`SELECT snapshot FROM rollouts WHERE snapshot NOT LIKE '%"hosts":[]%'`),
      beyond: db.prepare<[number], { id: string }>('SELECT id FROM rollouts ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?'),
      drop: db.prepare('DELETE FROM rollouts WHERE id = ?'),
      dropHosts: db.prepare('DELETE FROM rollout_hosts WHERE rollout = ?'),
      freeze: db.prepare('INSERT INTO rollout_frozen (env, by, at) VALUES (?, ?, ?) ON CONFLICT(env) DO NOTHING'),
      unfreeze: db.prepare('DELETE FROM rollout_frozen WHERE env = ?'),
      frozen: db.prepare<[], { env: string }>('SELECT env FROM rollout_frozen ORDER BY env'),
      pin: db.prepare('INSERT INTO rollout_pins (agent, app, sha, by, at) VALUES (@agent, @app, @sha, @by, @at) ON CONFLICT(agent, app) DO UPDATE SET sha = excluded.sha, by = excluded.by, at = excluded.at'),
      unpin: db.prepare('DELETE FROM rollout_pins WHERE agent = ? AND app = ?'),
      pins: db.prepare<[], Pin>('SELECT agent, app, sha, by, at FROM rollout_pins'),
      pinCount: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM rollout_pins'),
      pinned: db.prepare<[string, string], { n: number }>('SELECT count(*) AS n FROM rollout_pins WHERE agent = ? AND app = ?'),
      byStatus: db.prepare<[], { status: RolloutStatus; n: number }>('SELECT status, count(*) AS n FROM rollouts GROUP BY status'),
    };
    this.write = db.transaction((w: RolloutWrite) => this.saving(w)());
    this.drop = db.transaction((id: string) => {
      this.stmt.drop.run(id);
      this.stmt.dropHosts.run(id);
    });
    db.transaction(() => this.migrate())();
  }

  /**
   * The statements of `w` with their values taken now, to run later inside a transaction (the
   * hub's per-turn commit): what they write is the rollout as it was at this change.
   */
  saving(w: RolloutWrite): () => void {
    const { snap } = w;
    const head = w.rollout && { id: snap.id, app: snap.app, env: snap.env, status: snap.status, createdAt: snap.createdAt, snapshot: JSON.stringify({ ...snap, hosts: [] }) };
    const rows = w.hosts.map(({ pos, host }) => ({ rollout: snap.id, agent: host.agent, pos, state: host.state, seq: snap.seq, at: snap.updatedAt, host: JSON.stringify(host) }));
    return () => {
      if (head) this.stmt.save.run(head);
      for (const row of rows) this.stmt.saveHost.run(row);
    };
  }

  /** Rollouts that were under way (running, paused or frozen, or ended with hosts still updating) when the hub stopped. */
  active(): RolloutSnapshot[] {
    return this.parse(this.stmt.active.all()).map((head) => this.withHosts(head));
  }

  /** The newest rollouts without their hosts (skipping the `offset` newest), with host counts per state. */
  recent(limit: number, offset = 0): (RolloutSnapshot & { counts: HostCounts })[] {
    return this.parse(this.stmt.recent.all(limit, offset)).map((head) => ({ ...head, counts: Object.fromEntries(this.stmt.counts.all(head.id).map((r) => [r.state, r.n])) }));
  }

  /** How many rollouts the history holds. */
  get size(): number {
    return this.stmt.total.get()!.n;
  }

  get(id: string): RolloutSnapshot | undefined {
    const head = this.parse(this.stmt.one.all(id))[0];
    return head && this.withHosts(head);
  }

  /** The rollouts of the history per status (statuses with none left out). */
  statusCounts(): Partial<Record<RolloutStatus, number>> {
    return Object.fromEntries(this.stmt.byStatus.all().map((r) => [r.status, r.n]));
  }

  /** The rollout's status alone, undefined when it is not in the history. */
  status(id: string): RolloutStatus | undefined {
    return this.stmt.status.get(id)?.status;
  }

  /** One host of a rollout, without reading the others. */
  host(id: string, agent: string): RolloutHost | undefined {
    const row = this.stmt.host.get(id, agent);
    const h = row && decode(RolloutHost, row.host);
    return h && h.ok ? h.value : undefined;
  }

  /** Forgets all but the newest `keep` rollouts; returns the ids forgotten. */
  prune(keep: number): string[] {
    const ids = this.stmt.beyond.all(keep).map((r) => r.id);
    for (const id of ids) this.drop(id);
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

  /** The rollout's hosts from their rows; its seq and updatedAt are its latest change, wherever it was written. */
  private withHosts(head: RolloutSnapshot): RolloutSnapshot {
    const snap = { ...head, hosts: [] as RolloutHost[] };
    for (const row of this.stmt.hosts.all(head.id)) {
      const h = decode(RolloutHost, row.host);
      if (!h.ok) continue;
      snap.hosts.push(h.value);
      if (row.seq > snap.seq) snap.seq = row.seq;
      if (row.at > snap.updatedAt) snap.updatedAt = row.at;
    }
    return snap;
  }

  /** Rows of a hub before host rows kept every host in the snapshot: each is split once. */
  private migrate(): void {
    for (const snap of this.parse(this.stmt.unsplit.all())) {
      this.write({ snap, rollout: true, hosts: snap.hosts.map((host, pos) => ({ pos, host })) });
    }
  }

  /** A row that no longer parses (written by another version) is skipped, not fatal. */
  private parse(rows: { snapshot: string }[]): RolloutSnapshot[] {
    return rows.flatMap((r) => {
      const d = decode(RolloutSnapshot, r.snapshot);
      return d.ok ? [d.value] : [];
    });
  }
}

import type { Logger } from '../../../shared/logger.js';
import type { RolloutSnapshot, RolloutStatus } from '../../../shared/contract/rollout-messages.js';
import type { StateDb } from '../../state-db.js';

export type GitHubSettings = {
  apiUrl: string;
  token: string;
  /** The hub's public address (http.publicUrl): each status links to the rollout's page there. */
  publicUrl?: string;
};

/** The hub page's address of a rollout (the dashboard routes by the URL's fragment). */
export function rolloutPageUrl(publicUrl: string, id: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/#/rollouts/${encodeURIComponent(id)}`;
}

/** GitHub's deployment status for each rollout status. */
const DEPLOYMENT_STATE: Record<RolloutStatus, 'queued' | 'in_progress' | 'success' | 'failure' | 'inactive'> = {
  frozen: 'queued',
  running: 'in_progress',
  paused: 'in_progress',
  succeeded: 'success',
  failed: 'failure',
  aborted: 'failure',
  superseded: 'inactive',
};

const REQUEST_TIMEOUT_MS = 10_000;

/**
 * Mirrors each rollout as a GitHub Deployment of its SHA to its environment, with a status per
 * change (queued, in_progress, success, failure, inactive), each linking to the rollout's page on
 * the hub when http.publicUrl is set. The deployment id is kept in the hub's state so a restart
 * never creates a second one. When a deployment succeeds, the older successful ones of its
 * repository and environment are marked inactive, so GitHub shows one active deployment per
 * environment (its own auto_inactive skips production environments, so the hub does it for all).
 * GitHub being down never affects a rollout: a failed call is logged and the next change tries
 * again (an older deployment left success is retired at the environment's next success).
 */
export class GitHubDeployments {
  private readonly stmt;
  /** One chain per rollout keeps its calls in order. */
  private readonly chains = new Map<string, Promise<void>>();

  constructor(
    private readonly settings: GitHubSettings,
    db: StateDb,
    private readonly log: Logger,
  ) {
    db.exec('CREATE TABLE IF NOT EXISTS rollout_github (id TEXT PRIMARY KEY, deployment_id INTEGER NOT NULL, state TEXT, repo TEXT, env TEXT)');
    // Rows of hubs before inactive deployments have no repository and environment: never retired.
    const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('rollout_github')").all();
    if (!columns.some((c) => c.name === 'repo')) db.exec('ALTER TABLE rollout_github ADD COLUMN repo TEXT; ALTER TABLE rollout_github ADD COLUMN env TEXT');
    this.stmt = {
      get: db.prepare<[string], { deploymentId: number; state: string | null }>('SELECT deployment_id AS deploymentId, state FROM rollout_github WHERE id = ?'),
      insert: db.prepare('INSERT INTO rollout_github (id, deployment_id, state, repo, env) VALUES (?, ?, NULL, ?, ?)'),
      setState: db.prepare('UPDATE rollout_github SET state = ? WHERE id = ?'),
      // Older: created before it here (rowid order), whatever GitHub's ids.
      olderSucceeded: db.prepare<[string, string, string], { id: string; deploymentId: number }>(
        "SELECT id, deployment_id AS deploymentId FROM rollout_github WHERE repo = ? AND env = ? AND state = 'success' AND rowid < (SELECT rowid FROM rollout_github WHERE id = ?) ORDER BY rowid",
      ),
    };
  }

  report(snap: RolloutSnapshot): void {
    this.enqueue(snap.id, () => this.sync(snap));
  }

  private enqueue(id: string, task: () => Promise<void>): void {
    const previous = this.chains.get(id) ?? Promise.resolve();
    const next = previous.then(task).catch((err: unknown) => this.log.warn({ rollout: id, err: (err as Error).message }, 'GitHub deployment not updated'));
    this.chains.set(id, next);
    void next.finally(() => this.chains.get(id) === next && this.chains.delete(id));
  }

  /** Resolves when every report so far has been sent (or has failed). */
  async idle(): Promise<void> {
    while (this.chains.size) await Promise.all(this.chains.values());
  }

  private async sync(snap: RolloutSnapshot): Promise<void> {
    const state = DEPLOYMENT_STATE[snap.status];
    let row = this.stmt.get.get(snap.id);
    // Inactive is final: a retired deployment a late host reopens does not read success again.
    if (row?.state === state || row?.state === 'inactive') return;
    if (!row) {
      const created = await this.call<{ id: number }>(`/repos/${snap.repo}/deployments`, {
        ref: snap.sha,
        environment: snap.env,
        description: `pushfleet rollout ${snap.id}`.slice(0, 140),
        auto_merge: false,
        required_contexts: [],
        payload: { rolloutId: snap.id, app: snap.app, pusher: snap.pusher },
        production_environment: snap.env === 'production',
      });
      this.stmt.insert.run(snap.id, created.id, snap.repo, snap.env);
      row = { deploymentId: created.id, state: null };
    }
    await this.postStatus(snap.repo, snap.id, row.deploymentId, state, snap.env, describe(snap));
    if (state !== 'success') return;
    for (const older of this.stmt.olderSucceeded.all(snap.repo, snap.env, snap.id)) {
      // On the older rollout's own chain, after anything it still had to send.
      this.enqueue(older.id, () => this.postStatus(snap.repo, older.id, older.deploymentId, 'inactive', snap.env, `superseded by rollout ${snap.id}`));
    }
  }

  private async postStatus(repo: string, id: string, deploymentId: number, state: string, env: string, description: string): Promise<void> {
    await this.call(`/repos/${repo}/deployments/${deploymentId}/statuses`, {
      state,
      environment: env,
      description: description.slice(0, 140),
      auto_inactive: false,
      ...(this.settings.publicUrl !== undefined && { log_url: rolloutPageUrl(this.settings.publicUrl, id) }),
    });
    this.stmt.setState.run(state, id);
    this.log.debug({ rollout: id, deployment: deploymentId, state }, 'GitHub deployment status sent');
  }

  private async call<T>(path: string, body: unknown): Promise<T> {
    const res = await fetch(`${this.settings.apiUrl.replace(/\/$/, '')}${path}`, {
      method: 'POST',
      headers: {
        accept: 'application/vnd.github+json',
        authorization: `Bearer ${this.settings.token}`,
        'content-type': 'application/json',
        'user-agent': 'pushfleet',
        'x-github-api-version': '2022-11-28',
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`POST ${path} answered ${res.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as T;
  }
}

function describe(snap: RolloutSnapshot): string {
  const done = snap.hosts.filter((h) => h.state === 'succeeded').length;
  return `${snap.status}: ${done}/${snap.hosts.length} hosts updated${snap.reason ? `; ${snap.reason}` : ''}`;
}

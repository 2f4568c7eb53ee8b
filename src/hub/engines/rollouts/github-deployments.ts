import type { Logger } from '../../../shared/logger.js';
import type { RolloutSnapshot, RolloutStatus } from '../../../shared/contract/rollout-messages.js';
import type { StateDb } from '../../state-db.js';

export type GitHubSettings = { apiUrl: string; token: string };

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
 * change (queued, in_progress, success, failure, inactive). The deployment id is kept in the hub's
 * state so a restart never creates a second one. GitHub being down never affects a rollout: a
 * failed call is logged and the next change tries again.
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
    db.exec('CREATE TABLE IF NOT EXISTS rollout_github (id TEXT PRIMARY KEY, deployment_id INTEGER NOT NULL, state TEXT)');
    this.stmt = {
      get: db.prepare<[string], { deploymentId: number; state: string | null }>('SELECT deployment_id AS deploymentId, state FROM rollout_github WHERE id = ?'),
      insert: db.prepare('INSERT INTO rollout_github (id, deployment_id, state) VALUES (?, ?, NULL)'),
      setState: db.prepare('UPDATE rollout_github SET state = ? WHERE id = ?'),
    };
  }

  report(snap: RolloutSnapshot): void {
    const previous = this.chains.get(snap.id) ?? Promise.resolve();
    const next = previous.then(() => this.sync(snap)).catch((err: unknown) => this.log.warn({ rollout: snap.id, err: (err as Error).message }, 'GitHub deployment not updated'));
    this.chains.set(snap.id, next);
    void next.finally(() => this.chains.get(snap.id) === next && this.chains.delete(snap.id));
  }

  /** Resolves when every report so far has been sent (or has failed). */
  async idle(): Promise<void> {
    while (this.chains.size) await Promise.all(this.chains.values());
  }

  private async sync(snap: RolloutSnapshot): Promise<void> {
    const state = DEPLOYMENT_STATE[snap.status];
    let row = this.stmt.get.get(snap.id);
    if (row?.state === state) return;
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
      this.stmt.insert.run(snap.id, created.id);
      row = { deploymentId: created.id, state: null };
    }
    await this.call(`/repos/${snap.repo}/deployments/${row.deploymentId}/statuses`, {
      state,
      environment: snap.env,
      description: describe(snap).slice(0, 140),
      auto_inactive: false,
    });
    this.stmt.setState.run(state, snap.id);
    this.log.debug({ rollout: snap.id, deployment: row.deploymentId, state }, 'GitHub deployment status sent');
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

import type { AgentEntry } from '../../shared/fleet.js';
import type { AppState } from '../../shared/messages.js';
import { envOf } from '../engines/rollouts/plan.js';
import type { Head } from './head-view.js';

/** One host running an app, beside its environment's head. */
export type AppHost = {
  agent: string;
  online: boolean;
  sha: string | null;
  targetSha: string | null;
  state: AppState['state'];
  /** Whether `sha` is the head of the ref the app follows; null when the hub knows no such head. */
  matchesHead: boolean | null;
  error: string | null;
  updatedAt: string;
};

/** One app in one environment (GET /api/v1/apps): the SHA each host runs against the head it follows. */
export type AppRow = {
  app: string;
  environment: string;
  repo: string;
  follows: AppState['follows'];
  /** The branch followed (a name or glob), null for a tag-following app. */
  branch: string | null;
  /** The one ref the app follows, when `follows` names one (no glob): the ref whose head counts. */
  ref: string | null;
  head: string | null;
  headAt: string | null;
  hosts: AppHost[];
  /** Hosts on the head, and hosts whose last update failed or rolled back. */
  onHead: number;
  failed: number;
};

export type AppFilter = { app?: string; environment?: string };

const GLOB = /[*?[\]{}()!+@]/;

/** The ref an app follows when it names exactly one (refs/heads/main), else null (a glob: many refs). */
export function followedRef(follows: AppState['follows']): string | null {
  if (!follows || GLOB.test(follows.pattern)) return null;
  return `refs/${follows.kind === 'branch' ? 'heads' : 'tags'}/${follows.pattern}`;
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Rows of apps per environment (the agents' `env` label, as rollouts group them), one per app,
 * environment, repo and followed pattern (normally one per app and environment), each host with
 * whether it runs the head of the ref it follows.
 */
export function appRows(agents: Iterable<[string, AgentEntry]>, headOf: (repo: string, ref: string) => Head | undefined, filter: AppFilter = {}): AppRow[] {
  const rows = new Map<string, AppRow>();
  for (const [agent, entry] of agents) {
    const environment = envOf(entry);
    if (filter.environment !== undefined && environment !== filter.environment) continue;
    for (const app of entry.apps.values()) {
      if (filter.app !== undefined && app.app !== filter.app) continue;
      const key = JSON.stringify([app.app, environment, app.repo, app.follows?.kind, app.follows?.pattern]);
      let row = rows.get(key);
      if (!row) {
        const ref = followedRef(app.follows);
        const head = ref === null ? undefined : headOf(app.repo, ref);
        const branch = app.follows?.kind === 'branch' ? app.follows.pattern : null;
        row = { app: app.app, environment, repo: app.repo, follows: app.follows, branch, ref, head: head?.sha ?? null, headAt: head?.receivedAt ?? null, hosts: [], onHead: 0, failed: 0 };
        rows.set(key, row);
      }
      const matchesHead = row.head === null ? null : app.sha === row.head;
      if (matchesHead) row.onHead++;
      if (app.state === 'failed' || app.state === 'rolled-back') row.failed++;
      const error = app.lastError ? `${app.lastError.step}: ${app.lastError.message}` : app.refused ? `refused ${app.refused.sha.slice(0, 8)}: ${app.refused.reason}` : null;
      row.hosts.push({ agent, online: entry.status?.state === 'online', sha: app.sha, targetSha: app.targetSha, state: app.state, matchesHead, error, updatedAt: app.updatedAt });
    }
  }
  const out = [...rows.values()].sort((a, b) => compare(a.app, b.app) || compare(a.environment, b.environment) || compare(a.repo, b.repo));
  for (const row of out) row.hosts.sort((a, b) => compare(a.agent, b.agent));
  return out;
}

import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { GitHubDeployments } from '../../src/hub/engines/rollouts/github-deployments.js';
import { githubSettings, RolloutsConfig } from '../../src/hub/engines/rollouts/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { SCHEMA_VERSION } from '../../src/shared/messages.js';
import { type RolloutSnapshot, type RolloutStatus } from '../../src/shared/contract/rollout-messages.js';
import { Cleanup } from '../support/cleanup.js';
import { startFakeGitHub } from '../support/fake-github.js';

const TOKEN = 'ghs_test_token';
const SHA = 'a'.repeat(40);
const log = createLogger('test', 'silent');

function snapshot(status: RolloutStatus, sha = SHA, env = 'production'): RolloutSnapshot {
  const at = new Date().toISOString();
  return {
    v: SCHEMA_VERSION,
    id: `web.${env}.${sha.slice(0, 12)}`,
    app: 'web',
    env,
    repo: 'acme/web',
    ref: 'refs/heads/main',
    sha,
    deliveryId: 'd-1',
    pusher: 'ada',
    status,
    reason: null,
    policy: { batchSize: 2, canary: 1, maxUnavailable: 2, hostTimeout: 60, failureThreshold: 1, onAbort: 'stop' },
    hosts: [{ agent: 'h1', state: status === 'succeeded' ? 'succeeded' : 'updating', canary: true, fromSha: null, startedAt: at, endedAt: null, error: null, down: false }],
    createdAt: at,
    updatedAt: at,
    endedAt: null,
    seq: 0,
    hostsOmitted: 0,
  };
}

describe('GitHub Deployments reporting, against a local server speaking GitHub REST', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('creates one deployment per rollout and posts a status per status change', async () => {
    const github = await startFakeGitHub(cleanup, TOKEN);
    const db = new Database(':memory:');
    const reporter = new GitHubDeployments({ apiUrl: github.url, token: TOKEN }, db, log);
    for (const status of ['frozen', 'running', 'running', 'paused', 'succeeded'] as const) reporter.report(snapshot(status));
    await reporter.idle();

    const created = github.calls.filter((c) => c.path === '/repos/acme/web/deployments');
    expect(created).toHaveLength(1);
    expect(created[0]!.body).toMatchObject({ ref: SHA, environment: 'production', auto_merge: false, required_contexts: [], production_environment: true });
    expect(created[0]!.headers).toMatchObject({ accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' });
    // running and paused are both in_progress on GitHub: posted once.
    expect(github.statesOf(1000)).toEqual(['queued', 'in_progress', 'success']);

    // A restarted hub (same state file) keeps the deployment.
    const again = new GitHubDeployments({ apiUrl: github.url, token: TOKEN }, db, log);
    again.report(snapshot('superseded'));
    await again.idle();
    expect(github.calls.filter((c) => c.path === '/repos/acme/web/deployments')).toHaveLength(1);
    expect(github.statesOf(1000).at(-1)).toBe('inactive');
  });

  it('links each status to the rollout on the hub, and retires the older deployments of an environment once a newer one succeeded', async () => {
    const github = await startFakeGitHub(cleanup, TOKEN);
    const reporter = new GitHubDeployments({ apiUrl: github.url, token: TOKEN, publicUrl: 'https://hub.example.com/fleet/' }, new Database(':memory:'), log);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((x) => x.repeat(40)) as [string, string, string, string];
    // One at a time: each rollout has its own chain, so two rollouts' calls may interleave.
    const send = async (...snaps: RolloutSnapshot[]) => {
      for (const s of snaps) {
        reporter.report(s);
        await reporter.idle();
      }
    };
    // Deployments 1000 (a, production), 1003 (a, staging), 1005 (b, production), 1008 (c, production), 1011.
    await send(snapshot('running', a), snapshot('succeeded', a), snapshot('succeeded', a, 'staging'));
    const statuses = () => github.calls.filter((call) => call.path.endsWith('/statuses')).map((call) => `${call.path.split('/')[5]} ${call.body.state} ${call.body.log_url}`);
    const page = (sha: string, env = 'production') => `https://hub.example.com/fleet/#/rollouts/web.${env}.${sha.slice(0, 12)}`;
    expect(statuses()).toEqual([`1000 in_progress ${page(a)}`, `1000 success ${page(a)}`, `1003 success ${page(a, 'staging')}`]);

    // A newer rollout under way, or failed, retires nothing: the older deployment still runs.
    await send(snapshot('running', b));
    await send(snapshot('failed', b));
    expect(statuses().slice(3)).toEqual([`1005 in_progress ${page(b)}`, `1005 failure ${page(b)}`]);

    await send(snapshot('running', c), snapshot('succeeded', c));
    // Only the older successful production deployment goes inactive, after the newer one's success:
    // not the failed one, not staging's, not the newer one.
    expect(statuses().slice(5)).toEqual([`1008 in_progress ${page(c)}`, `1008 success ${page(c)}`, `1000 inactive ${page(a)}`]);
    expect(github.calls.at(-1)!.body).toMatchObject({ environment: 'production', auto_inactive: false, description: `superseded by rollout web.production.${c.slice(0, 12)}` });

    // Inactive is final, and the next success retires only what is still active.
    await send(snapshot('succeeded', a));
    await send(snapshot('running', d), snapshot('succeeded', d));
    expect(statuses().slice(8)).toEqual([`1012 in_progress ${page(d)}`, `1012 success ${page(d)}`, `1008 inactive ${page(c)}`]);
  });

  it("takes a state file from before inactive deployments: its rows are kept and never retired, the new ones are", async () => {
    const github = await startFakeGitHub(cleanup, TOKEN);
    const db = new Database(':memory:');
    db.exec("CREATE TABLE rollout_github (id TEXT PRIMARY KEY, deployment_id INTEGER NOT NULL, state TEXT); INSERT INTO rollout_github VALUES ('web.production.old', 7, 'success')");
    const reporter = new GitHubDeployments({ apiUrl: github.url, token: TOKEN }, db, log);
    for (const sha of ['c'.repeat(40), 'd'.repeat(40)]) {
      reporter.report(snapshot('succeeded', sha));
      await reporter.idle();
    }
    expect(github.calls.filter((c) => c.body.state === 'inactive').map((c) => c.path)).toEqual(['/repos/acme/web/deployments/1000/statuses']);
  });

  it('sends no log_url without http.publicUrl', async () => {
    const github = await startFakeGitHub(cleanup, TOKEN);
    const reporter = new GitHubDeployments({ apiUrl: github.url, token: TOKEN }, new Database(':memory:'), log);
    reporter.report(snapshot('running'));
    await reporter.idle();
    expect(github.calls.at(-1)!.body).not.toHaveProperty('log_url');
  });

  it('survives GitHub failing: the rollout is unaffected and the next change catches up', async () => {
    const github = await startFakeGitHub(cleanup, TOKEN);
    const reporter = new GitHubDeployments({ apiUrl: github.url, token: TOKEN }, new Database(':memory:'), log);
    github.failNext(1);
    reporter.report(snapshot('running'));
    await reporter.idle();
    expect(github.calls).toHaveLength(1);
    reporter.report(snapshot('failed'));
    await reporter.idle();
    expect(github.statesOf(1000)).toEqual(['failure']);

    const wrongToken = new GitHubDeployments({ apiUrl: github.url, token: 'nope' }, new Database(':memory:'), log);
    wrongToken.report(snapshot('running'));
    await wrongToken.idle(); // a 401 is logged, never thrown
    expect(github.calls.at(-1)!.headers.authorization).toBe('Bearer nope');
  });

  it('takes the token from the config or PUSHFLEET_GITHUB_TOKEN, and names the key when neither is set', () => {
    const config = (github: unknown) => RolloutsConfig.parse({ github });
    expect(githubSettings(config(undefined))).toBeUndefined();
    expect(githubSettings(config({ token: 't1' }))).toEqual({ apiUrl: 'https://api.github.com', token: 't1' });
    expect(githubSettings(config({ apiUrl: 'https://ghe.example/api/v3' }), { PUSHFLEET_GITHUB_TOKEN: 't2' })).toEqual({ apiUrl: 'https://ghe.example/api/v3', token: 't2' });
    expect(() => githubSettings(config({}), {})).toThrow(/^engines\.rollouts\.github\.token: set it, or PUSHFLEET_GITHUB_TOKEN/);
  });
});

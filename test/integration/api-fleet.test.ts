import { afterEach, describe, expect, it } from 'vitest';
import { defaultUsersFile } from '../../src/hub/users/users-file.js';
import { recordingRestart, startAgentProcess, type TestApp } from '../support/agent-process.js';
import { apiClient, apiTokens } from '../support/api-client.js';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';
import { GitFixture } from '../support/git-fixture.js';
import { loadSpec } from '../support/openapi.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { BROKERS, SECRET, startTestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const spec = await loadSpec();

describe.each(BROKERS)('fleet API on %s: agents, apps, heads, deliveries, retry (a real hub, real agent processes)', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('shows the agents and the SHA each runs against the branch head, every delivery and why, and retries as an operator only', async () => {
    const git = new GitFixture({ 'app.txt': 'v0\n' });
    cleanup.defer(() => git.remove());
    const hub = await startTestHub(cleanup, broker);
    const { viewer, operator } = await apiTokens(hub.usersFile ?? defaultUsersFile(hub.stateDir));
    const api = apiClient(spec, `http://127.0.0.1:${hub.httpPort}`);
    const app = (host: string): TestApp => ({ name: 'web', repo: 'acme/web', branch: 'main', path: git.workdir(host), remote: git.bare, restart: recordingRestart(`${git.root}/${host}.log`) });
    for (const [id, env] of [['prod-1', 'production'], ['stage-1', 'staging']] as const) await startAgentProcess(cleanup, { id, mqttUrl: hub.mqttUrl, apps: [app(id)], labels: { env, zone: 'a' }, logLevel: 'info' });

    // No token, a wrong one: 401 before anything is read.
    expect((await api.get('/agents')).status).toBe(401);
    expect((await api.get('/agents', 'ci-viewer:wrong')).status).toBe(401);
    const seen = await waitFor('both agents in the API', async () => {
      const r = await api.get('/agents', viewer);
      return r.status === 200 && r.body.total === 2 && r.body.items.every((a: any) => a.lastHeartbeat && a.apps.length === 1) && r.body;
    });
    expect(seen.items.map((a: any) => [a.id, a.online, a.labels.env])).toEqual([['prod-1', true, 'production'], ['stage-1', true, 'staging']]);
    expect(seen.items[0]).toMatchObject({ version: expect.any(String), hostFacts: { hostname: expect.any(String), arch: process.arch }, apps: [{ app: 'web', repo: 'acme/web', follows: { kind: 'branch', pattern: 'main' } }] });

    const sha = git.commit('A', { 'app.txt': 'A\n' });
    const delivery = 'a1b2c3d4-0000-4000-8000-000000000001';
    const req = signedRequest(SECRET, 'push', githubPushPayload({ after: sha }), delivery);
    expect((await postWebhook(hub.webhookUrl, req)).status).toBe(200);
    expect((await postWebhook(hub.webhookUrl, req)).status).toBe(200);
    expect((await postWebhook(hub.webhookUrl, { ...req, headers: { ...req.headers, 'x-hub-signature-256': `sha256=${'0'.repeat(64)}`, 'x-github-delivery': 'forged-1' } })).status).toBe(401);

    const apps = await waitFor('both hosts on the head', async () => {
      const r = await api.get('/apps', viewer);
      return r.body.items?.length === 2 && r.body.items.every((row: any) => row.hosts[0].matchesHead === true) && r.body;
    });
    expect(apps.items.map((row: any) => [row.app, row.environment, row.branch, row.head, row.hosts.map((h: any) => [h.agent, h.sha, h.state])])).toEqual([
      ['web', 'production', 'main', sha, [['prod-1', sha, 'deployed']]],
      ['web', 'staging', 'main', sha, [['stage-1', sha, 'deployed']]],
    ]);
    expect((await api.get('/apps?environment=staging', viewer)).body.total).toBe(1);
    expect((await api.get('/heads?repo=acme/web', viewer)).body.items).toEqual([expect.objectContaining({ repo: 'acme/web', ref: 'refs/heads/main', sha, deliveryId: delivery })]);
    expect((await api.get('/agents/prod-1', viewer)).body.apps[0]).toMatchObject({ sha, state: 'deployed', deliveryId: delivery });
    expect((await api.get('/agents?online=true&label=env=staging,zone=a', viewer)).body.items.map((a: any) => a.id)).toEqual(['stage-1']);

    const deliveries = (await api.get('/deliveries', viewer)).body;
    expect(deliveries.items.map((d: any) => [d.result, d.status, d.delivery, d.state])).toEqual([
      ['rejected', 401, 'forged-1', null],
      ['duplicate', 200, delivery, 'published'],
      ['accepted', 200, delivery, 'published'],
    ]);
    expect(deliveries.items[0].reason).toContain('signature does not match');
    expect(deliveries.items[2]).toMatchObject({ repo: 'acme/web', ref: 'refs/heads/main', sha, pusher: expect.any(String) });
    expect((await api.get('/deliveries?result=rejected&limit=1', viewer)).body).toMatchObject({ total: 1, limit: 1 });
    expect((await api.get('/hub', viewer)).body).toMatchObject({ state: 'online', version: expect.any(String) });

    // Bad input is a 400 naming it; an unknown agent or app a 404.
    expect((await api.get('/agents?online=maybe', viewer)).body.error).toContain('query online');
    expect((await api.get('/agents?label=env', viewer)).status).toBe(400);
    expect((await api.get('/agents?limit=5000', viewer)).status).toBe(400);
    expect((await api.get('/agents?colour=red', viewer)).body.error).toContain('unknown parameter');
    expect((await api.get('/agents/nobody', viewer)).status).toBe(404);

    // Retry: a viewer is refused; an operator's goes to the agent, which answers in the app state.
    expect((await api.post('/agents/prod-1/apps/web/retry', viewer)).status).toBe(403);
    expect((await api.post('/agents/prod-1/apps/nothing/retry', operator)).status).toBe(404);
    const retried = await api.post('/agents/prod-1/apps/web/retry', operator);
    expect(retried).toMatchObject({ status: 202, body: { agent: 'prod-1', app: 'web', by: expect.stringMatching(/^ci-operator@/) } });
    const answer = await waitFor('the agent answered the retry', async () => {
      const got = (await api.get('/agents/prod-1', viewer)).body.apps[0].retryRequest;
      return got?.id === retried.body.requestId && got;
    });
    expect(answer).toMatchObject({ id: retried.body.requestId, accepted: false });

    // `status` reads the same document through the API as from the broker (the hub's status line aside, whose `at` moves).
    const hubUrl = `http://127.0.0.1:${hub.httpPort}`;
    const doc = (r: { stdout: string }) => ({ ...JSON.parse(r.stdout), hub: null });
    // Read at once, and again should a heartbeat land between the two.
    const viaApi = await waitFor('the same document both ways', async () => {
      const [broker, api] = await Promise.all([runCli(['status', '--json', '--mqtt-url', hub.mqttUrl]), runCli(['status', '--json', '--api', hubUrl], { PUSHFLEET_TOKEN: viewer })]);
      expect(api.code, api.stderr).toBe(0);
      return JSON.stringify(doc(api)) === JSON.stringify(doc(broker)) && api;
    });
    expect(JSON.parse(viaApi.stdout).hub).toMatchObject({ state: 'online' });
    expect(Object.keys(doc(viaApi).agents)).toEqual(['prod-1', 'stage-1']);
    const table = await runCli(['status', '--api', hubUrl, '--token', viewer, '--wide']);
    expect(table.stdout).toMatch(new RegExp(`prod-1\\s+online.*web\\s+main\\s+${sha}\\s+deployed`));
    const refused = await runCli(['status', '--api', hubUrl, '--token', 'ci-viewer:wrong']);
    expect([refused.code, refused.stderr.trim()]).toEqual([1, 'pushfleet: hub API /api/v1/agents: wrong user name or password (HTTP 401)']);
    expect((await runCli(['status', '--api', hubUrl])).stderr).toContain('PUSHFLEET_TOKEN');
  });
});

import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rolloutId } from '../../src/shared/topics.js';
import { rolloutWebApp, startAgentProcess } from '../support/agent-process.js';
import { addBrokerUser } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { coordinosaurClient } from '../support/coordinosaur-client.js';
import { startFakeGitHub } from '../support/fake-github.js';
import { GitFixture } from '../support/git-fixture.js';
import { parsePrometheusText, sampleValue, type Family } from '../support/prometheus-text.js';
import { freePort } from '../support/ports.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { SECRET, startTestHub, type TestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const GITHUB_TOKEN = 'ghs_metrics_test';
const PUBLIC_URL = 'https://hub.example.com/fleet';
const HOSTS = [
  { id: 'h1', labels: { env: 'production', zone: 'a' } },
  { id: 'h2', labels: { env: 'production', zone: 'b' } },
  { id: 'h3', labels: { env: 'production', zone: 'b' } },
];

/** GET /metrics with `token` (name:password) as a Bearer token, or none. */
async function scrape(hub: TestHub, token?: string): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

type Tokens = Record<'viewer' | 'operator' | 'agent', string>;

/**
 * A test hub whose users file has, from its start, one account of each role that matters here;
 * their API tokens. (Added later, an account works once the hub has reread the file, and the
 * failed logins meanwhile would throttle the client.)
 */
async function hubWithAccounts(cleanup: Cleanup, overrides: Record<string, unknown>): Promise<{ hub: TestHub; tokens: Tokens }> {
  const usersFile = join(cleanup.tempDir('pushfleet-metrics-users-'), 'users.json');
  const tokens = {} as Tokens;
  for (const [name, role] of [['grafana', 'viewer'], ['ops', 'operator'], ['h9', 'agent']] as const) tokens[role] = `${name}:${await addBrokerUser(usersFile, name, role)}`;
  const hub = await startTestHub(cleanup, 'aedes', { broker: { port: await freePort(), usersFile }, ...overrides });
  return { hub, tokens };
}

describe('GET /metrics on a real hub with real agents', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('counts a push, its rollout and the updates it made true, and GitHub links back to each rollout and retires the older', async () => {
    const github = await startFakeGitHub(cleanup, GITHUB_TOKEN);
    const git = new GitFixture({ 'app.txt': 'v0\n' });
    cleanup.defer(() => git.remove());
    const { hub, tokens } = await hubWithAccounts(cleanup, {
      http: { host: '127.0.0.1', port: 0, publicUrl: PUBLIC_URL },
      metrics: { agentLabels: ['env', 'zone'], maxLabelValues: 1 },
      engines: { rollouts: { defaults: { batchSize: 2, canary: 0, maxUnavailable: 2 }, github: { apiUrl: github.url, token: GITHUB_TOKEN } } },
    });
    const metrics = async (): Promise<Family[]> => {
      const res = await scrape(hub, tokens.viewer);
      expect(res.status).toBe(200);
      expect(res.type).toBe('text/plain; version=0.0.4; charset=utf-8');
      return parsePrometheusText(res.text);
    };
    const value = async (family: string, sample: string, labels: Record<string, string> = {}) => sampleValue(await metrics(), family, sample, labels);
    await Promise.all(HOSTS.map(({ id, labels }) => startAgentProcess(cleanup, { id, mqttUrl: hub.mqttUrl, labels, apps: [rolloutWebApp(git, id, { restart: ['true'] })], logLevel: 'info' })));
    await waitFor('3 agents online in /metrics', async () => (await value('pushfleet_agents', 'pushfleet_agents', { state: 'online' })) === 3);

    const push = async (files: Record<string, string>, before: string, delivery?: string) => {
      const sha = git.commit(`change ${JSON.stringify(files)}`, files);
      const res = await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: sha, before }), delivery));
      expect(res.status).toBe(200);
      return { sha, id: rolloutId('web', 'production', sha) };
    };
    const base = git.head();
    const first = await push({ 'app.txt': 'v1\n' }, base, 'delivery-1');
    await waitFor('the first rollout succeeded', async () => (await value('pushfleet_rollouts', 'pushfleet_rollouts', { state: 'succeeded' })) === 1, 40_000);
    // Its copy, a forged one and a ping: each counted by what became of it.
    const again = await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: first.sha, before: base }), 'delivery-1'));
    expect(again.body).toMatchObject({ duplicate: true });
    expect((await postWebhook(hub.webhookUrl, signedRequest('not-the-secret-0123456789', 'push', githubPushPayload({ after: first.sha, before: base })))).status).toBe(401);
    expect((await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'ping', { zen: 'Keep it logically awesome.' }))).status).toBe(200);

    let m = await metrics();
    const counts = (family: string, label: string) => Object.fromEntries(m.find((f) => f.name === family)!.samples.filter((s) => !s.name.endsWith('_created')).map((s) => [s.labels[label], s.value]));
    expect(counts('pushfleet_webhook_deliveries', 'result')).toEqual({ published: 1, publishing: 0, 'in-doubt': 0, duplicate: 1, 'not-published': 0, ignored: 1, rejected: 1, error: 0 });
    expect(sampleValue(m, 'pushfleet_push_publish_seconds', 'pushfleet_push_publish_seconds_count')).toBe(1);
    expect(sampleValue(m, 'pushfleet_push_publish_seconds', 'pushfleet_push_publish_seconds_sum')).toBeGreaterThan(0);
    expect(counts('pushfleet_updates', 'outcome')).toEqual({ deployed: 3, failed: 0, 'rolled-back': 0 });
    expect(sampleValue(m, 'pushfleet_update_duration_seconds', 'pushfleet_update_duration_seconds_count', { outcome: 'deployed' })).toBe(3);
    expect(sampleValue(m, 'pushfleet_update_duration_seconds', 'pushfleet_update_duration_seconds_bucket', { outcome: 'deployed', le: '+Inf' })).toBe(3);
    expect(counts('pushfleet_rollouts', 'state')).toEqual({ running: 0, paused: 0, frozen: 0, succeeded: 1, failed: 0, aborted: 0, superseded: 0 });
    // maxLabelValues 1: zone keeps b (two agents) and sums the rest.
    const byLabel = m.find((f) => f.name === 'pushfleet_agents_by_label')!.samples.filter((s) => s.labels.state === 'online').map((s) => `${s.labels.label}=${s.labels.value} ${s.value}`);
    expect(byLabel.sort()).toEqual(['env=production 3', 'zone=__other__ 1', 'zone=b 2']);
    expect(counts('pushfleet_services', 'status')).toMatchObject({ running: 0, queued: 0 });
    expect(m.find((f) => f.name === 'pushfleet_job_runs')?.samples ?? []).toEqual([]); // no jobs table: no jobs engine
    expect(sampleValue(m, 'process_resident_memory_bytes', 'process_resident_memory_bytes')).toBeGreaterThan(0);

    // A newer push: the older deployment is retired once, and only once, the newer one succeeded.
    await waitFor('the first deployment reads success on GitHub', () => github.statesOf(1000).includes('success'));
    expect(github.calls.filter((c) => c.path.endsWith('/statuses')).map((c) => c.body.state)).not.toContain('inactive');
    const second = await push({ 'app.txt': 'v2\n' }, first.sha);
    await waitFor('the second rollout succeeded', async () => (await value('pushfleet_rollouts', 'pushfleet_rollouts', { state: 'succeeded' })) === 2, 40_000);
    m = await metrics();
    expect(counts('pushfleet_updates', 'outcome')).toEqual({ deployed: 6, failed: 0, 'rolled-back': 0 });
    expect(counts('pushfleet_webhook_deliveries', 'result')).toMatchObject({ published: 2, duplicate: 1 });
    const statuses = () => github.calls.filter((c) => c.path.endsWith('/statuses')).map((c) => `${c.path.split('/')[5]} ${c.body.state} ${c.body.log_url}`);
    await waitFor(() => `the first deployment retired; statuses: ${statuses().join(', ')}`, () => statuses().some((s) => s.startsWith('1000 inactive')));
    const page = (id: string) => `${PUBLIC_URL}/#/rollouts/${id}`;
    expect(statuses()).toEqual([`1000 in_progress ${page(first.id)}`, `1000 success ${page(first.id)}`, `1003 in_progress ${page(second.id)}`, `1003 success ${page(second.id)}`, `1000 inactive ${page(first.id)}`]);
  });

  it('answers a scrape only with a token of any role unless metrics.allowAnonymous, and shows semaphore holders and queues per channel', async () => {
    const { hub, tokens } = await hubWithAccounts(cleanup, { engines: { semaphore: { maxConcurrentJobs: 2 }, services: { enabled: false } } });
    const refused = await scrape(hub);
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.text)).toMatchObject({ code: 'unauthorized' });
    expect((await scrape(hub, 'grafana:wrong-password')).status).toBe(401);
    expect((await scrape(hub, tokens.agent)).status).toBe(403);
    expect((await scrape(hub, tokens.operator)).status).toBe(200);

    const sem = await coordinosaurClient(cleanup, hub.mqttUrl);
    for (const uid of ['j1', 'j2', 'j3', 'j4', 'j5']) await sem.register('deploys', uid);
    await sem.register('backups', 'b1');
    expect((await sem.infos('deploys')).waiting).toHaveLength(3);
    const m = parsePrometheusText((await scrape(hub, tokens.viewer)).text);
    const per = (family: string) => Object.fromEntries(m.find((f) => f.name === family)!.samples.map((s) => [s.labels.channel, s.value]));
    expect(per('pushfleet_semaphore_holders')).toEqual({ deploys: 2, backups: 1 });
    expect(per('pushfleet_semaphore_queue_length')).toEqual({ deploys: 3, backups: 0 });
    // engines.services off: no series claims there are no services.
    expect(m.find((f) => f.name === 'pushfleet_services')?.samples ?? []).toEqual([]);

    const open = await startTestHub(cleanup, 'aedes', { metrics: { allowAnonymous: true } });
    const anonymous = await scrape(open);
    expect(anonymous.status).toBe(200);
    expect(sampleValue(parsePrometheusText(anonymous.text), 'pushfleet_agents', 'pushfleet_agents', { state: 'online' })).toBe(0);
  });
});

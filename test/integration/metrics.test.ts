import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rolloutId } from '../../src/shared/topics.js';
import { defaultUsersFile } from '../../src/hub/users/users-file.js';
import { rolloutWebApp, startAgentProcess } from '../support/agent-process.js';
import { addBrokerUser } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { coordinosaurClient } from '../support/coordinosaur-client.js';
import { startFakeGitHub } from '../support/fake-github.js';
import { GitFixture } from '../support/git-fixture.js';
import { parsePrometheusText, sampleValue, type Family } from '../support/prometheus-text.js';
import { freePort } from '../support/ports.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { RestartableHub } from '../support/restartable-hub.js';
import { BROKERS, SECRET, startTestHub, type BrokerKind, type TestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const GITHUB_TOKEN = 'ghs_metrics_test';
const PUBLIC_URL = 'https://hub.example.com/fleet';
const HOSTS = [
  { id: 'h1', labels: { env: 'production', zone: 'a' } },
  { id: 'h2', labels: { env: 'production', zone: 'b' } },
  { id: 'h3', labels: { env: 'production', zone: 'b' } },
];

/** GET /metrics of the hub at `origin` (or a test hub) with `token` (name:password) as a Bearer token, or none. */
async function scrape(hub: TestHub | string, token?: string): Promise<{ status: number; type: string | null; text: string }> {
  const origin = typeof hub === 'string' ? hub : `http://127.0.0.1:${hub.httpPort}`;
  const res = await fetch(`${origin}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

/** A scraper with a viewer's token: the families, parsed, and the value of one sample. */
function scraper(hub: TestHub | string, token: string) {
  const families = async (): Promise<Family[]> => {
    const res = await scrape(hub, token);
    expect(res.status).toBe(200);
    expect(res.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    return parsePrometheusText(res.text);
  };
  const value = async (family: string, sample = family, labels: Record<string, string> = {}) => sampleValue(await families(), family, sample, labels);
  return { families, value };
}

/** A family's samples (no _created ones) by the value of `label`. */
const byLabel = (families: Family[], name: string, label: string) =>
  Object.fromEntries(families.find((f) => f.name === name)!.samples.filter((s) => !s.name.endsWith('_created')).map((s) => [s.labels[label], s.value]));

/** Commits `files` and posts its push to the hub's webhook (200); the rollout of app web to production it makes. */
async function push(git: GitFixture, webhookUrl: string, files: Record<string, string>, before: string, delivery?: string) {
  const sha = git.commit(`change ${JSON.stringify(files)}`, files);
  const res = await postWebhook(webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: sha, before }), delivery));
  expect(res.status).toBe(200);
  return { sha, id: rolloutId('web', 'production', sha) };
}

/** Agents of app web in a rollout, restarting with `true`. */
const startAgents = (cleanup: Cleanup, git: GitFixture, mqttUrl: string, hosts: { id: string; labels: Record<string, string> }[]) =>
  Promise.all(hosts.map(({ id, labels }) => startAgentProcess(cleanup, { id, mqttUrl, labels, apps: [rolloutWebApp(git, id, { restart: ['true'] })], logLevel: 'info' })));

type Tokens = Record<'viewer' | 'operator' | 'agent', string>;

/**
 * A test hub whose users file has, from its start, one account of each role that matters here;
 * their API tokens. (Added later, an account works once the hub has reread the file, and the
 * failed logins meanwhile would throttle the client.)
 */
async function hubWithAccounts(cleanup: Cleanup, overrides: Record<string, unknown>, broker: BrokerKind = 'aedes'): Promise<{ hub: TestHub; tokens: Tokens }> {
  const usersFile = join(cleanup.tempDir('pushfleet-metrics-users-'), 'users.json');
  const tokens = {} as Tokens;
  for (const [name, role] of [['grafana', 'viewer'], ['ops', 'operator'], ['h9', 'agent']] as const) tokens[role] = `${name}:${await addBrokerUser(usersFile, name, role)}`;
  // With mosquitto the hub's API reads the same path; the broker's own accounts are mosquitto's.
  const hub = await startTestHub(cleanup, broker, { broker: { port: await freePort(), usersFile }, ...overrides });
  return { hub, tokens };
}

describe('GET /metrics on a real hub with real agents', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it.each(BROKERS)('counts a push, its rollout and the updates it made true, and GitHub links back to each rollout and retires the older (%s)', async (broker) => {
    const github = await startFakeGitHub(cleanup, GITHUB_TOKEN);
    const git = new GitFixture({ 'app.txt': 'v0\n' });
    cleanup.defer(() => git.remove());
    const { hub, tokens } = await hubWithAccounts(cleanup, {
      http: { host: '127.0.0.1', port: 0, publicUrl: PUBLIC_URL },
      metrics: { agentLabels: ['env', 'zone'], maxLabelValues: 1 },
      engines: { rollouts: { defaults: { batchSize: 2, canary: 0, maxUnavailable: 2 }, github: { apiUrl: github.url, token: GITHUB_TOKEN } } },
    }, broker);
    const { families: metrics, value } = scraper(hub, tokens.viewer);
    await startAgents(cleanup, git, hub.mqttUrl, HOSTS);
    await waitFor('3 agents online in /metrics', async () => (await value('pushfleet_agents', 'pushfleet_agents', { state: 'online' })) === 3);

    const base = git.head();
    const first = await push(git, hub.webhookUrl, { 'app.txt': 'v1\n' }, base, 'delivery-1');
    await waitFor('the first rollout succeeded', async () => (await value('pushfleet_rollouts', 'pushfleet_rollouts', { state: 'succeeded' })) === 1, 40_000);
    // Its copy, a forged one and a ping: each counted by what became of it.
    const again = await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: first.sha, before: base }), 'delivery-1'));
    expect(again.body).toMatchObject({ duplicate: true });
    expect((await postWebhook(hub.webhookUrl, signedRequest('not-the-secret-0123456789', 'push', githubPushPayload({ after: first.sha, before: base })))).status).toBe(401);
    expect((await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'ping', { zen: 'Keep it logically awesome.' }))).status).toBe(200);

    let m = await metrics();
    const counts = (family: string, label: string) => byLabel(m, family, label);
    expect(counts('pushfleet_webhook_deliveries', 'result')).toEqual({ published: 1, publishing: 0, 'in-doubt': 0, duplicate: 1, 'not-published': 0, ignored: 1, rejected: 1, error: 0 });
    expect(sampleValue(m, 'pushfleet_push_publish_seconds', 'pushfleet_push_publish_seconds_count')).toBe(1);
    expect(sampleValue(m, 'pushfleet_push_publish_seconds', 'pushfleet_push_publish_seconds_sum')).toBeGreaterThan(0);
    expect(counts('pushfleet_updates', 'outcome')).toEqual({ deployed: 3, failed: 0, 'rolled-back': 0 });
    expect(sampleValue(m, 'pushfleet_update_duration_seconds', 'pushfleet_update_duration_seconds_count', { outcome: 'deployed' })).toBe(3);
    expect(sampleValue(m, 'pushfleet_update_duration_seconds', 'pushfleet_update_duration_seconds_bucket', { outcome: 'deployed', le: '+Inf' })).toBe(3);
    expect(counts('pushfleet_rollouts', 'state')).toEqual({ running: 0, paused: 0, frozen: 0, succeeded: 1, failed: 0, aborted: 0, superseded: 0 });
    // maxLabelValues 1: zone keeps b (two agents) and sums the rest.
    const agentsBy = m.find((f) => f.name === 'pushfleet_agents_by_label')!.samples.filter((s) => s.labels.state === 'online').map((s) => `${s.labels.label}=${s.labels.value} ${s.value}`);
    expect(agentsBy.sort()).toEqual(['env=production 3', 'zone=__other__ 1', 'zone=b 2']);
    expect(counts('pushfleet_services', 'status')).toMatchObject({ running: 0, queued: 0 });
    expect(m.find((f) => f.name === 'pushfleet_job_runs')?.samples ?? []).toEqual([]); // no jobs table: no jobs engine
    expect(sampleValue(m, 'process_resident_memory_bytes', 'process_resident_memory_bytes')).toBeGreaterThan(0);

    // A newer push: the older deployment is retired once, and only once, the newer one succeeded.
    await waitFor('the first deployment reads success on GitHub', () => github.statesOf(1000).includes('success'));
    expect(github.calls.filter((c) => c.path.endsWith('/statuses')).map((c) => c.body.state)).not.toContain('inactive');
    const second = await push(git, hub.webhookUrl, { 'app.txt': 'v2\n' }, first.sha);
    await waitFor('the second rollout succeeded', async () => (await value('pushfleet_rollouts', 'pushfleet_rollouts', { state: 'succeeded' })) === 2, 40_000);
    m = await metrics();
    expect(counts('pushfleet_updates', 'outcome')).toEqual({ deployed: 6, failed: 0, 'rolled-back': 0 });
    expect(counts('pushfleet_webhook_deliveries', 'result')).toMatchObject({ published: 2, duplicate: 1 });
    const statuses = () => github.calls.filter((c) => c.path.endsWith('/statuses')).map((c) => `${c.path.split('/')[5]} ${c.body.state} ${c.body.log_url}`);
    await waitFor(() => `the first deployment retired; statuses: ${statuses().join(', ')}`, () => statuses().some((s) => s.startsWith('1000 inactive')));
    const page = (id: string) => `${PUBLIC_URL}/#/rollouts/${id}`;
    expect(statuses()).toEqual([`1000 in_progress ${page(first.id)}`, `1000 success ${page(first.id)}`, `1003 in_progress ${page(second.id)}`, `1003 success ${page(second.id)}`, `1000 inactive ${page(first.id)}`]);
  });

  it('across a hub kill -9: what is read from the store stays true, counters start again from 0, and retained app states are not counted again', async () => {
    const git = new GitFixture({ 'app.txt': 'v0\n' });
    cleanup.defer(() => git.remove());
    const hub = await RestartableHub.create(cleanup, undefined, { config: { engines: { rollouts: { defaults: { batchSize: 2, canary: 0, maxUnavailable: 2 } } } } });
    const viewer = `grafana:${await addBrokerUser(defaultUsersFile(hub.stateDir), 'grafana', 'viewer')}`;
    await hub.start();
    const { families, value } = scraper(new URL(hub.webhookUrl).origin, viewer);
    await startAgents(cleanup, git, hub.mqttUrl, HOSTS.slice(0, 2));
    const first = await push(git, hub.webhookUrl, { 'app.txt': 'v1\n' }, git.head());
    await waitFor('the first rollout succeeded', async () => (await value('pushfleet_rollouts', 'pushfleet_rollouts', { state: 'succeeded' })) === 1, 40_000);
    expect(await value('pushfleet_updates', 'pushfleet_updates_total', { outcome: 'deployed' })).toBe(2);

    await hub.kill();
    await hub.start();
    await waitFor('both agents back online', async () => (await value('pushfleet_agents', 'pushfleet_agents', { state: 'online' })) === 2, 30_000);
    let m = await families();
    expect(byLabel(m, 'pushfleet_rollouts', 'state')).toMatchObject({ succeeded: 1, running: 0 });
    expect(byLabel(m, 'pushfleet_updates', 'outcome')).toEqual({ deployed: 0, failed: 0, 'rolled-back': 0 });
    expect(byLabel(m, 'pushfleet_webhook_deliveries', 'result')).toMatchObject({ published: 0 });

    await push(git, hub.webhookUrl, { 'app.txt': 'v2\n' }, first.sha);
    await waitFor('the second rollout succeeded', async () => (await value('pushfleet_rollouts', 'pushfleet_rollouts', { state: 'succeeded' })) === 2, 40_000);
    m = await families();
    expect(byLabel(m, 'pushfleet_updates', 'outcome')).toEqual({ deployed: 2, failed: 0, 'rolled-back': 0 });
    expect(byLabel(m, 'pushfleet_webhook_deliveries', 'result')).toMatchObject({ published: 1 });
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

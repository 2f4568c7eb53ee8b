import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { rolloutId } from '../../src/shared/topics.js';
import { rolloutWebApp, startAgentProcess } from '../support/agent-process.js';
import { apiClient, apiTokens } from '../support/api-client.js';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';
import { GitFixture } from '../support/git-fixture.js';
import { loadSpec } from '../support/openapi.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { SECRET, startTestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const spec = await loadSpec();
const HOSTS = ['h1', 'h2', 'h3'];
/** A restart that takes HOLD_MS, so a pause lands while hosts still wait. */
const SLOW_RESTART = [process.execPath, '-e', 'setTimeout(() => {}, Number(process.env.HOLD_MS))'];
/** Healthy unless this is h3 and health.txt says otherwise. */
const H3_HEALTH = [process.execPath, '-e', "process.exit(process.env.PUSHFLEET_AGENT === 'h3' && require('fs').readFileSync('health.txt', 'utf8') !== 'healthy\\n' ? 1 : 0)"];

describe('rollouts API: a real hub, three agent processes in one environment', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('shows live progress per batch and host with the reason of each failure; freezes, pauses, resumes and aborts for operators only', async () => {
    const git = new GitFixture({ 'app.txt': 'v0\n', 'health.txt': 'healthy\n' });
    cleanup.defer(() => git.remove());
    const hub = await startTestHub(cleanup, 'aedes', { engines: { rollouts: { defaults: { batchSize: 1, canary: 0, failureThreshold: 3, maxUnavailable: 2 } } } });
    const { viewer, operator } = await apiTokens(hub.usersFile!);
    const api = apiClient(spec, `http://127.0.0.1:${hub.httpPort}`);
    // h3's health check fails on a sick health.txt: it rolls itself back (to the clone's commit) and the rollout records why.
    for (const id of HOSTS) {
      execFileSync('git', ['clone', '--quiet', git.bare, git.workdir(id)]);
      const app = rolloutWebApp(git, id, { restart: SLOW_RESTART, env: { HOLD_MS: '600' }, health: { command: H3_HEALTH, timeout: 0.5, interval: 0.1 } });
      await startAgentProcess(cleanup, { id, mqttUrl: hub.mqttUrl, apps: [app], labels: { env: 'production' }, logLevel: 'info' });
    }
    await waitFor('the agents in the API', async () => (await api.get('/agents', viewer)).body.items?.filter((a: any) => a.apps.length).length === 3);
    const push = async (files: Record<string, string>) => {
      const sha = git.commit(JSON.stringify(files), files);
      expect((await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: sha })))).status).toBe(200);
      return rolloutId('web', 'production', sha);
    };
    const rollout = async (id: string) => (await api.get(`/rollouts/${id}`, viewer)).body;
    const until = (id: string, what: string, ok: (r: any) => boolean, timeoutMs?: number) => {
      let last: unknown;
      return waitFor(() => `rollout ${id} ${what}; last seen: ${JSON.stringify(last)}`, async () => {
        const r = (last = await rollout(id));
        return r.id && ok(r) && r;
      }, timeoutMs);
    };

    // Frozen: the push is recorded and waits; a viewer may not unfreeze it, nor resume it anyone.
    expect((await api.post('/environments/production/freeze', viewer)).status).toBe(403);
    expect(await api.post('/environments/production/freeze', operator)).toMatchObject({ status: 202, body: { requested: 'freeze', environment: 'production', frozen: true } });
    expect((await api.get('/environments', viewer)).body.items).toEqual([{ name: 'production', frozen: true, agents: 3, online: 3 }]);
    const id = await push({ 'app.txt': 'v1\n', 'health.txt': 'sick\n' });
    const frozen = await until(id, 'frozen with its hosts', (r) => r.status === 'frozen' && r.hosts.length === 3);
    expect(frozen.batches).toEqual([{ name: 'wave', size: 3, counts: { pending: 3 }, done: 0 }]);
    expect((await api.post(`/rollouts/${id}/resume`, operator)).body.error).toContain('frozen');

    expect((await api.post('/environments/production/unfreeze', operator)).body).toMatchObject({ frozen: false });
    await until(id, 'one host done', (r) => r.progress.done >= 1);
    expect((await api.post(`/rollouts/${id}/pause`, viewer)).status).toBe(403);
    expect(await api.post(`/rollouts/${id}/pause`, operator)).toMatchObject({ status: 202, body: { requested: 'pause', id, status: 'paused' } });
    expect((await api.post(`/rollouts/${id}/pause`, operator)).status).toBe(409);
    const held = await until(id, 'paused with nobody updating', (r) => r.status === 'paused' && !r.counts.updating);
    expect(held.progress.done).toBeLessThan(3);

    expect((await api.post(`/rollouts/${id}/resume`, operator)).body).toMatchObject({ status: 'running' });
    const ended = await until(id, 'ended', (r) => r.status === 'failed', 40_000);
    expect(ended.progress).toEqual({ hosts: 3, done: 3, succeeded: 2, failed: 1 });
    expect(ended.hosts.find((h: any) => h.agent === 'h3')).toMatchObject({ state: 'failed', error: expect.stringMatching(/^health: /) });
    expect(ended.batches).toEqual([{ name: 'wave', size: 3, counts: { succeeded: 2, failed: 1 }, done: 3 }]);
    expect((await api.post(`/rollouts/${id}/abort`, operator)).body.error).toContain('already failed');

    // A second push, aborted while it runs: the hosts that had not started are skipped.
    const second = await push({ 'app.txt': 'v2\n' });
    await until(second, 'running', (r) => r.status === 'running' && r.hosts.length === 3);
    expect(await api.post(`/rollouts/${second}/abort`, operator)).toMatchObject({ status: 202, body: { requested: 'abort', status: 'aborted' } });
    const aborted = await until(second, 'aborted with nobody updating', (r) => r.status === 'aborted' && !r.counts.updating);
    expect(aborted.reason).toMatch(/^aborted by ci-operator@/);
    expect(aborted.counts.skipped).toBeGreaterThanOrEqual(1);

    const list = (await api.get('/rollouts?limit=1', viewer)).body;
    expect(list).toMatchObject({ total: 2, limit: 1, items: [{ id: second, status: 'aborted' }] });
    expect((await api.get('/rollouts?offset=1', viewer)).body.items.map((r: any) => [r.id, r.progress.failed])).toEqual([[id, 1]]);
    expect((await api.get('/rollouts/web.production.0123456789ab', viewer)).status).toBe(404);
    expect((await api.post('/rollouts/web.production.0123456789ab/pause', operator)).status).toBe(404);
    expect((await api.get('/rollouts/not-an-id', viewer)).body).toMatchObject({ code: 'invalid' });

    // The CLI reads the same list and rollout through the API as over the broker.
    const hubUrl = `http://127.0.0.1:${hub.httpPort}`;
    const both = async (...args: string[]) => {
      const [broker, viaApi] = await Promise.all([runCli([...args, '--json', '--mqtt-url', hub.mqttUrl]), runCli([...args, '--json', '--api', hubUrl], { PUSHFLEET_TOKEN: viewer })]);
      expect(viaApi.code, viaApi.stderr).toBe(broker.code);
      return [JSON.parse(broker.stdout), JSON.parse(viaApi.stdout)];
    };
    const [listedBroker, listedApi] = await both('rollout', 'list');
    expect(listedApi).toEqual(listedBroker);
    expect(listedApi.map((r: any) => r.id)).toEqual([second, id]);
    const [shownBroker, shownApi] = await both('rollout', 'status', id, '--no-watch');
    expect(shownApi).toEqual(shownBroker);
    expect(shownApi.hosts).toHaveLength(3);
  });
});

import { join } from 'node:path';
import mqtt from 'mqtt';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/hub/audit/audit-entry.js';
import { SCHEMA_VERSION } from '../../src/shared/messages.js';
import { ROLLOUT_CONTROL } from '../../src/shared/topics.js';
import { addBrokerUser } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { expectSpecResponse, loadSpec } from '../support/openapi.js';
import { freePort } from '../support/ports.js';
import { githubPushPayload, postWebhook, sign, signedRequest } from '../support/push-payload.js';
import { SECRET, startTestHub, type TestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const spec = await loadSpec();
const SHA = 'a'.repeat(40);

/** A hub on the embedded broker whose users file also has alice (operator), ci-bot (viewer) and ops (operator, for MQTT). */
async function hubWithAccounts(cleanup: Cleanup, overrides: Record<string, unknown> = {}) {
  const usersFile = join(cleanup.tempDir('pushfleet-audit-users-'), 'users.json');
  const tokens = {
    alice: `alice:${await addBrokerUser(usersFile, 'alice', 'operator')}`,
    viewer: `ci-bot:${await addBrokerUser(usersFile, 'ci-bot', 'viewer')}`,
  };
  const opsPassword = await addBrokerUser(usersFile, 'ops', 'operator');
  const hub = await startTestHub(cleanup, 'aedes', { broker: { port: await freePort(), usersFile }, ...overrides });
  const brokerUrl = (user: string, password: string) => {
    const url = new URL(hub.mqttUrl);
    url.username = user;
    url.password = password;
    return url.toString();
  };
  return { hub, tokens, ops: brokerUrl('ops', opsPassword), brokerUrl, api: request(`http://127.0.0.1:${hub.httpPort}`) };
}

/** The whole log through the API as `token` (viewer), each page checked against openapi.yaml. */
async function auditOf(hub: TestHub, token: string, query = ''): Promise<AuditEntry[]> {
  const res = await request(`http://127.0.0.1:${hub.httpPort}`).get(`/api/v1/audit?limit=1000${query}`).set('authorization', `Bearer ${token}`);
  expectSpecResponse(spec, 'GET', '/audit', res);
  expect(res.status).toBe(200);
  return res.body.items;
}

/** Publishes a rollout control request as the client at `url` and waits for the hub's answer. */
async function rolloutControl(cleanup: Cleanup, url: string, op: Record<string, unknown>, by = 'the-cli-user'): Promise<{ ok: boolean; error: string | null }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  cleanup.defer(() => client.endAsync(true));
  const requestId = `req-${Math.random().toString(36).slice(2, 12)}`;
  const answer = new Promise<{ ok: boolean; error: string | null }>((resolve) => client.on('message', (_t, payload) => resolve(JSON.parse(payload.toString()))));
  await client.subscribeAsync(`pushfleet/rollouts/replies/${requestId}`, { qos: 1 });
  await client.publishAsync(ROLLOUT_CONTROL, JSON.stringify({ v: SCHEMA_VERSION, requestId, by, ...op }), { qos: 1 });
  return answer;
}

describe('audit log', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('records deliveries (accepted, duplicate, rejected), refused logins at the broker and the API, and actions through the API and MQTT, with who and where', async () => {
    const { hub, tokens, ops, brokerUrl, api } = await hubWithAccounts(cleanup);

    const push = signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), 'delivery-1');
    expect((await postWebhook(hub.webhookUrl, push)).status).toBe(200);
    expect((await postWebhook(hub.webhookUrl, push)).body).toMatchObject({ duplicate: true });
    const forged = { body: push.body, headers: { ...push.headers, 'x-github-delivery': 'forged-1', 'x-hub-signature-256': sign('not-the-secret-at-all', push.body) } };
    expect((await postWebhook(hub.webhookUrl, forged)).status).toBe(401);

    await expect(mqtt.connectAsync(brokerUrl('mallory', 'guess-1'), { reconnectPeriod: 0 })).rejects.toThrow();
    expect((await api.get('/api/v1/audit').set('authorization', 'Bearer eve:not-her-password')).status).toBe(401);

    const added = await api.post('/api/v1/services').set('authorization', `Bearer ${tokens.alice}`).send({ name: 'sensor-1', action: 'read-sensor' });
    expect(added.status).toBe(201);
    expect((await api.delete('/api/v1/services/sensor-1').set('authorization', `Bearer ${tokens.viewer}`)).status).toBe(403);
    const frozen = await api.post('/api/v1/environments/staging/freeze').set('authorization', `Bearer ${tokens.alice}`);
    expectSpecResponse(spec, 'POST', '/environments/{env}/freeze', frozen);
    expect(frozen.status).toBe(202);
    expect(await rolloutControl(cleanup, ops, { op: 'pause', id: 'web.production.0123456789ab' })).toMatchObject({ ok: false, error: expect.stringContaining('no rollout') });
    expect(await rolloutControl(cleanup, ops, { op: 'freeze', env: 'production' })).toMatchObject({ ok: true });
    // The harness is a hub account: what the hub publishes itself is not an operator's action.
    expect(await rolloutControl(cleanup, hub.mqttUrl, { op: 'unfreeze', env: 'production' })).toMatchObject({ ok: true });

    const entries = await auditOf(hub, tokens.viewer);
    const pick = ({ kind, via, who, identity, action, target, outcome, count }: AuditEntry) => ({ kind, via, who, identity, action, target, outcome, count });
    expect(entries.map(pick)).toEqual([
      { kind: 'delivery', via: 'webhook', who: 'ada', identity: 'github', action: 'delivery', target: 'delivery-1', outcome: 'accepted', count: 1 },
      { kind: 'delivery', via: 'webhook', who: 'ada', identity: 'github', action: 'delivery', target: 'delivery-1', outcome: 'duplicate', count: 1 },
      { kind: 'delivery', via: 'webhook', who: null, identity: 'none', action: 'delivery', target: null, outcome: 'rejected', count: 1 },
      { kind: 'login', via: 'mqtt', who: 'mallory', identity: 'none', action: 'login', target: null, outcome: 'rejected', count: 1 },
      { kind: 'login', via: 'api', who: 'eve', identity: 'none', action: 'login', target: null, outcome: 'rejected', count: 1 },
      { kind: 'action', via: 'api', who: 'alice', identity: 'token', action: 'service.add', target: 'sensor-1', outcome: 'accepted', count: 1 },
      { kind: 'action', via: 'api', who: 'ci-bot', identity: 'token', action: 'service.remove', target: 'sensor-1', outcome: 'rejected', count: 1 },
      { kind: 'action', via: 'api', who: 'alice', identity: 'token', action: 'environment.freeze', target: 'staging', outcome: 'accepted', count: 1 },
      { kind: 'action', via: 'mqtt', who: 'ops', identity: 'mqtt-account', action: 'rollout.pause', target: 'web.production.0123456789ab', outcome: 'rejected', count: 1 },
      { kind: 'action', via: 'mqtt', who: 'ops', identity: 'mqtt-account', action: 'environment.freeze', target: 'production', outcome: 'accepted', count: 1 },
    ]);
    const [accepted, , rejected, brokerLogin, apiLogin, serviceAdd, forbidden, , paused] = entries;
    expect(accepted!.reason).toBe(`acme/web refs/heads/main ${SHA.slice(0, 12)}: recorded for publishing`);
    expect(rejected!.reason).toMatch(/^401: signature does not match/);
    for (const e of [brokerLogin, apiLogin, serviceAdd, paused]) expect(e!.address).toMatch(/127\.0\.0\.1$/);
    expect(brokerLogin!.reason).toBe('no such user');
    expect(serviceAdd!.reason).toBe('201');
    expect(forbidden!.reason).toMatch(/^403: user "ci-bot" is a viewer/);
    expect(paused!.reason).toMatch(/no rollout web\.production\.0123456789ab/);
    expect(Date.parse(accepted!.at)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('pages and filters by since, refuses a bad query with the spec\'s error, and refuses a client without a token', async () => {
    const { hub, tokens, api } = await hubWithAccounts(cleanup);
    for (let i = 0; i < 5; i++) expect((await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'ping', { zen: 'hi' }, `ping-${i}`))).status).toBe(200);
    const page = await api.get('/api/v1/audit?offset=1&limit=2').set('authorization', `Bearer ${tokens.viewer}`);
    expectSpecResponse(spec, 'GET', '/audit', page);
    expect(page.body).toMatchObject({ total: 5, offset: 1, limit: 2, items: [{ target: 'ping-1', reason: 'ping' }, { target: 'ping-2' }] });
    const latest = await api.get('/api/v1/audit?order=newest&limit=2').set('authorization', `Bearer ${tokens.viewer}`);
    expectSpecResponse(spec, 'GET', '/audit', latest);
    expect(latest.body).toMatchObject({ total: 5, offset: 0, limit: 2, items: [{ target: 'ping-4' }, { target: 'ping-3' }] });
    expect(await auditOf(hub, tokens.viewer, `&since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).toEqual([]);
    expect(await auditOf(hub, tokens.viewer, '&since=2020-01-01')).toHaveLength(5);
    for (const query of ['since=yesterday', 'since=2026-12-01T10:00:00', 'limit=0', 'until=now', 'order=random']) {
      const bad = await api.get(`/api/v1/audit?${query}`).set('authorization', `Bearer ${tokens.viewer}`);
      expectSpecResponse(spec, 'GET', '/audit', bad);
      expect(bad.status, query).toBe(400);
      expect(bad.body.code).toBe('invalid');
    }
    const anonymous = await api.get('/api/v1/audit');
    expectSpecResponse(spec, 'GET', '/audit', anonymous);
    expect(anonymous.status).toBe(401);
  });

  it('keeps at most audit.maxEntries entries, the newest, and counts a login failed in a loop and a flood of forged webhooks in one entry each', async () => {
    const { hub, tokens, brokerUrl } = await hubWithAccounts(cleanup, { audit: { maxEntries: 100 } });
    for (let i = 0; i < 130; i += 10) {
      const answers = await Promise.all(Array.from({ length: 10 }, (_, j) => postWebhook(hub.webhookUrl, signedRequest(SECRET, 'ping', {}, `p-${i + j}`))));
      expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    }
    // The broker holds each further answer longer (its login throttle): six tries take about 2 s.
    for (let i = 0; i < 6; i++) await expect(mqtt.connectAsync(brokerUrl('mallory', `guess-${i}`), { reconnectPeriod: 0 })).rejects.toThrow();
    const forged = signedRequest('not-the-secret-at-all', 'push', githubPushPayload({ after: SHA }));
    for (let i = 0; i < 500; i += 50) {
      const answers = await Promise.all(Array.from({ length: 50 }, () => postWebhook(hub.webhookUrl, forged)));
      expect(new Set(answers.map((a) => a.status))).toEqual(new Set([401]));
    }
    const entries = await waitFor('the refusals', async () => {
      const all = await auditOf(hub, tokens.viewer);
      return all.at(-1)?.count === 500 && all;
    });
    expect(entries).toHaveLength(100);
    expect(entries.slice(-2)).toMatchObject([
      { kind: 'login', who: 'mallory', count: 6 },
      { kind: 'delivery', outcome: 'rejected', count: 500 },
    ]);
    // 130 pings and 2 entries for the refusals: the 32 oldest pings went.
    expect(entries[0]).toMatchObject({ target: 'p-32' });
  });

  it('says who an MQTT request claims to be from when an external broker cannot tell the hub who published it', async () => {
    // Made before the start: logins refused while the hub had not read it yet would throttle this client.
    const usersFile = join(cleanup.tempDir('pushfleet-audit-users-'), 'users.json');
    const viewer = `ci-bot:${await addBrokerUser(usersFile, 'ci-bot', 'viewer')}`;
    const hub = await startTestHub(cleanup, 'mosquitto', { broker: { port: await freePort(), usersFile } });
    expect(await rolloutControl(cleanup, hub.mqttUrl, { op: 'freeze', env: 'staging' }, 'claims-to-be-ops')).toMatchObject({ ok: true });
    const entries = await auditOf(hub, viewer);
    expect(entries).toMatchObject([{ kind: 'action', via: 'mqtt', who: 'claims-to-be-ops', identity: 'claimed', address: null, action: 'environment.freeze', target: 'staging', outcome: 'accepted' }]);
  });
});

import { request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiAuth } from '../../src/hub/api/api-auth.js';
import { AuditLog } from '../../src/hub/audit/audit-log.js';
import { HubEvents } from '../../src/hub/hub-events.js';
import { ServicesError } from '../../src/hub/engines/services/services-api.js';
import { createHttpServer } from '../../src/hub/http-server.js';
import { openStateDb } from '../../src/hub/state-db.js';
import { TickBatch } from '../../src/hub/tick-batch.js';
import { LiveUsers } from '../../src/hub/users/live-users.js';
import { readUsers, writeUsers } from '../../src/hub/users/users-file.js';
import { DeliveryLog } from '../../src/hub/webhook/deliveries.js';
import type { ServiceView } from '../../src/shared/contract/services-engine-messages.js';
import { createLogger } from '../../src/shared/logger.js';
import { addBrokerUser } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { FakeServicesApi } from '../support/fake-services-api.js';
import { startTestHub } from '../support/test-hub.js';
import { expectSpecAnswer, loadSpec } from '../support/openapi.js';
import { waitFor } from '../support/wait.js';

type Answer = { status: number; headers: IncomingHttpHeaders; body: any };
type Call = { method?: string; path: string; auth?: [string, string] | string; body?: string | Buffer; type?: string; from?: string; headers?: Record<string, string> };

const spec = await loadSpec();

/** One real HTTP request, its answer checked against openapi.yaml; `from` picks the client's loopback address (each test its own, so failed logins of one do not throttle another). */
function call(port: number, { method = 'GET', path, auth, body, type = 'application/json', from = '127.0.0.1', headers = {} }: Call): Promise<Answer> {
  const authorization = auth === undefined ? undefined : typeof auth === 'string' ? auth : `Basic ${Buffer.from(auth.join(':')).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, localAddress: from, headers: { ...(authorization && { authorization }), ...(body !== undefined && { 'content-type': type }), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => {
          const answer = { status: res.statusCode!, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
          if (path.startsWith('/api/v1/')) expectSpecAnswer(spec, method, path, answer);
          resolve(answer);
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const SERVICE = { name: 'sensor-1', action: 'read-sensor', arg: '--port 3', selector: { zone: 'lab' } };

describe('services REST API', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** The hub's HTTP server with the fake engine (none: `engine` false) and a real users file: alice operator, bob agent. */
  async function apiServer(engine = true): Promise<{ port: number; api: FakeServicesApi; alice: [string, string]; bob: [string, string]; usersFile: string; users: LiveUsers }> {
    const dir = cleanup.tempDir('pushfleet-api-');
    const usersFile = join(dir, 'users.json');
    const alice: [string, string] = ['alice', await addBrokerUser(usersFile, 'alice', 'operator')];
    const bob: [string, string] = ['bob', await addBrokerUser(usersFile, 'bob', 'agent')];
    const log = createLogger('test', 'silent');
    const users = new LiveUsers(usersFile, log, () => undefined, 50);
    users.start();
    cleanup.defer(() => users.stop());
    const db = openStateDb(dir);
    cleanup.defer(() => db.close());
    const api = new FakeServicesApi();
    const batch = new TickBatch(db);
    const server: Server = createHttpServer({
      webhookPath: '/webhook',
      secret: 'test-webhook-secret-0123456789',
      maxBodyBytes: 1 << 20,
      maxInFlight: 10,
      maxBufferedBytes: 1 << 22,
      bodyTimeoutMs: 5000,
      publishTimeoutMs: 1000,
      deliveries: new DeliveryLog(db, batch),
      publish: async () => undefined,
      isConnected: () => true,
      notReady: () => undefined,
      unavailable: () => undefined,
      api: { auth: new ApiAuth({ users: () => users.users, log }), events: new HubEvents(), services: () => (engine ? api : undefined), audit: new AuditLog(db, batch, { maxEntries: 1000, maxAgeDays: 1 }) },
      log,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.defer(() => new Promise((resolve) => server.close(resolve)));
    cleanup.defer(() => server.closeAllConnections());
    return { port: (server.address() as AddressInfo).port, api, alice, bob, usersFile, users };
  }

  it('takes only operators of the users file: 401 with the challenge, 403 for another role, 200 for an operator', async () => {
    const { port, alice, bob } = await apiServer();
    const from = '127.0.0.2';
    const none = await call(port, { path: '/api/v1/services', from });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Basic realm="pushfleet"');
    expect(none.body).toEqual({ error: expect.stringContaining('operator'), code: 'unauthorized' });
    for (const auth of [[alice[0], 'wrong'], ['mallory', alice[1]], 'Bearer abc', 'Basic !!!'] as const) {
      const r = await call(port, { path: '/api/v1/services', auth: auth as [string, string] | string, from });
      expect(r.status, String(auth)).toBe(401);
      expect(r.headers['www-authenticate']).toBe(auth === 'Bearer abc' ? 'Bearer realm="pushfleet"' : 'Basic realm="pushfleet"');
    }
    const agent = await call(port, { path: '/api/v1/services', auth: bob, from });
    expect(agent).toMatchObject({ status: 403, body: { error: 'user "bob" has role agent: the API takes operator and viewer accounts only', code: 'forbidden' } });
    expect(agent.headers['www-authenticate']).toBeUndefined();
    const ok = await call(port, { path: '/api/v1/services', auth: alice, from });
    expect(ok).toMatchObject({ status: 200, body: { items: [], total: 0, offset: 0, limit: 50 } });
    // Unauthenticated, nothing else is answered: not even whether a route exists.
    expect((await call(port, { path: '/api/v1/nothing-here', from })).status).toBe(401);
    expect(await call(port, { path: '/api/v1/nothing-here', auth: alice, from })).toMatchObject({ status: 404, body: { code: 'not-found', error: 'no route for GET /api/v1/nothing-here' } });
  });

  it('an account changed in the users file is refused at once, a cached login notwithstanding', async () => {
    const { port, alice, usersFile, users } = await apiServer();
    const from = '127.0.0.3';
    expect((await call(port, { path: '/api/v1/servers', auth: alice, from })).status).toBe(200);
    const file = readUsers(usersFile);
    file.set('alice', { ...file.get('alice')!, role: 'client' });
    writeUsers(usersFile, file);
    await waitFor('the users file reloaded', () => users.users.get('alice')?.role === 'client');
    expect((await call(port, { path: '/api/v1/servers', auth: alice, from })).status).toBe(403);
    await addBrokerUser(usersFile, 'alice', 'operator');
    await waitFor('the new password loaded', () => users.users.get('alice')?.role === 'operator');
    // The old password, though verified a moment ago, no longer matches the account's hash.
    expect((await call(port, { path: '/api/v1/servers', auth: alice, from })).status).toBe(401);
  });

  it('a client that keeps failing gets 429 with Retry-After; other addresses are not held', async () => {
    const { port, alice } = await apiServer();
    const from = '127.0.0.4';
    for (let i = 0; i < 5; i++) expect((await call(port, { path: '/api/v1/services', auth: ['alice', `guess-${i}`], from })).status).toBe(401);
    const held = await call(port, { path: '/api/v1/services', auth: ['alice', 'guess-5'], from });
    expect(held).toMatchObject({ status: 429, body: { code: 'too-many-requests', error: expect.stringContaining('too many failed logins from 127.0.0.4') } });
    expect(Number(held.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await call(port, { path: '/api/v1/services', auth: alice, from: '127.0.0.5' })).status).toBe(200);
  });

  it('creates, shows, lists (paged, by status), removes; each answer the engine\'s view, each refusal {error, code}', async () => {
    const { port, api, alice } = await apiServer();
    const as = { auth: alice, from: '127.0.0.6' };
    const created = await call(port, { ...as, method: 'POST', path: '/api/v1/services', body: JSON.stringify(SERVICE) });
    expect(created).toMatchObject({ status: 201, body: { ...SERVICE, status: 'queued', generation: 0, history: [] } });
    expect(api.calls.at(-1)).toEqual({ op: 'add', args: [SERVICE], by: 'alice@127.0.0.6' });
    // arg and selector default as the contract says.
    await call(port, { ...as, method: 'POST', path: '/api/v1/services', body: JSON.stringify({ name: 'sensor-2', action: 'read-sensor' }) });
    expect(api.calls.at(-1)!.args).toEqual([{ name: 'sensor-2', action: 'read-sensor', arg: '', selector: {} }]);
    for (let i = 3; i <= 7; i++) await call(port, { ...as, method: 'POST', path: '/api/v1/services', body: JSON.stringify({ name: `sensor-${i}`, action: 'a' }) });
    api.services.set('sensor-2', { ...api.services.get('sensor-2')!, status: 'running' } satisfies ServiceView);

    const again = await call(port, { ...as, method: 'POST', path: '/api/v1/services', body: JSON.stringify(SERVICE) });
    expect(again).toEqual({ status: 409, headers: expect.anything(), body: { error: 'service "sensor-1" exists; remove it first or pick another name', code: 'exists' } });

    expect(await call(port, { ...as, path: '/api/v1/services/sensor-1' })).toMatchObject({ status: 200, body: { name: 'sensor-1', selector: { zone: 'lab' } } });
    const page = await call(port, { ...as, path: '/api/v1/services?offset=2&limit=3' });
    expect(page.status).toBe(200);
    expect(page.body).toMatchObject({ total: 7, offset: 2, limit: 3 });
    expect(page.body.items.map((s: ServiceView) => s.name)).toEqual(['sensor-3', 'sensor-4', 'sensor-5']);
    const running = await call(port, { ...as, path: '/api/v1/services?status=running' });
    expect(running.body).toMatchObject({ total: 1, items: [{ name: 'sensor-2' }] });

    const removed = await call(port, { ...as, method: 'DELETE', path: '/api/v1/services/sensor-1' });
    expect(removed).toMatchObject({ status: 202, body: { name: 'sensor-1', status: 'cancelled' } });
    expect(api.calls.at(-1)).toEqual({ op: 'remove', args: ['sensor-1'], by: 'alice@127.0.0.6' });
    expect(await call(port, { ...as, path: '/api/v1/services/sensor-1' })).toMatchObject({ status: 404, body: { error: 'no service "sensor-1"', code: 'not-found' } });
    expect((await call(port, { ...as, method: 'DELETE', path: '/api/v1/services/sensor-1' })).status).toBe(404);
  });

  it('servers and logs: paged servers, the current output or one generation\'s', async () => {
    const { port, api, alice } = await apiServer();
    const as = { auth: alice, from: '127.0.0.7' };
    for (const agent of ['a1', 'a2', 'a3']) api.serverList.push({ agent, online: true, labels: { zone: 'lab' }, actions: ['read-sensor'], maxWorkers: 2, used: 1, services: ['sensor-1'] });
    expect((await call(port, { ...as, path: '/api/v1/servers?limit=2' })).body).toMatchObject({ total: 3, offset: 0, limit: 2, items: [{ agent: 'a1' }, { agent: 'a2' }] });
    expect((await call(port, { ...as, path: '/api/v1/servers?offset=2' })).body.items).toEqual([expect.objectContaining({ agent: 'a3', maxWorkers: 2 })]);

    await api.add({ name: 'sensor-1', action: 'read-sensor', arg: '', selector: {} }, 'test');
    const at = new Date().toISOString();
    api.outputs.set('sensor-1', [1, 2].map((generation) => ({ name: 'sensor-1', agent: 'a1', generation, restarts: 0, at, output: `copy ${generation}\n` })));
    expect(await call(port, { ...as, path: '/api/v1/services/sensor-1/logs' })).toMatchObject({ status: 200, body: { generation: 2, output: 'copy 2\n' } });
    expect(await call(port, { ...as, path: '/api/v1/services/sensor-1/logs?generation=1' })).toMatchObject({ status: 200, body: { generation: 1, output: 'copy 1\n' } });
    expect(await call(port, { ...as, path: '/api/v1/services/sensor-1/logs?generation=9' })).toMatchObject({ status: 404, body: { code: 'not-found' } });
    expect(await call(port, { ...as, path: '/api/v1/services/sensor-1/logs?generation=0' })).toMatchObject({ status: 400, body: { code: 'invalid', error: expect.stringMatching(/^query generation: /) } });
    expect((await call(port, { ...as, path: '/api/v1/services/nope/logs' })).status).toBe(404);
  });

  it('bad input gets 400 naming the field, 413, 415, or 503 for a store that is down; the engine is not called with it', async () => {
    const { port, api, alice } = await apiServer();
    const as = { auth: alice, from: '127.0.0.8' };
    const post = (body: string | Buffer, type?: string) => call(port, { ...as, method: 'POST', path: '/api/v1/services', body, ...(type && { type }) });
    const cases: [string, number, string, RegExp][] = [
      ['{"name": "sensor-1", "action": ', 400, 'invalid', /^body: malformed JSON$/],
      ['{}', 400, 'invalid', /^name: .*; action: /],
      ['"just a string"', 400, 'invalid', /^body: malformed JSON$/],
      [JSON.stringify({ ...SERVICE, name: 'Bad Name' }), 400, 'invalid', /^name: use 1-63 lowercase/],
      [JSON.stringify({ ...SERVICE, name: 'request' }), 400, 'invalid', /^name: .*reserved/],
      [JSON.stringify({ ...SERVICE, action: 'rm -rf /' }), 400, 'invalid', /^action: /],
      [JSON.stringify({ ...SERVICE, arg: 42 }), 400, 'invalid', /^arg: /],
      [JSON.stringify({ ...SERVICE, arg: 'a\u0000b' }), 400, 'invalid', /^arg: holds a NUL/],
      [JSON.stringify({ ...SERVICE, selector: { zone: 7 } }), 400, 'invalid', /^selector\.zone: /],
      [JSON.stringify({ ...SERVICE, shell: 'sh -c x' }), 400, 'invalid', /^shell: unknown key$/],
      [JSON.stringify([SERVICE]), 400, 'invalid', /^body: Invalid input: expected object, received array$/],
    ];
    for (const [body, status, code, error] of cases) {
      const r = await post(body);
      expect({ body, status: r.status, code: r.body.code }).toEqual({ body, status, code });
      expect(r.body.error).toMatch(error);
      expect(r.body.error).not.toContain('\n');
    }
    expect(await post(JSON.stringify(SERVICE), 'text/plain')).toMatchObject({ status: 415, body: { code: 'unsupported-media-type' } });
    expect(await call(port, { ...as, method: 'POST', path: '/api/v1/services', body: JSON.stringify(SERVICE), headers: { 'content-type': '' } })).toMatchObject({ status: 415 });
    expect(await post(JSON.stringify(SERVICE), 'application/json; charset=latin1')).toMatchObject({ status: 415, body: { code: 'unsupported-media-type' } });
    expect(await call(port, { ...as, method: 'POST', path: '/api/v1/services', headers: { 'content-length': '0' } })).toMatchObject({ status: 400, body: { code: 'invalid', error: expect.stringMatching(/^body: /) } });
    const huge = Buffer.from(JSON.stringify({ ...SERVICE, arg: 'x'.repeat(1 << 20) }));
    expect(await post(huge)).toMatchObject({ status: 413, body: { code: 'too-large', error: 'body: larger than 65536 bytes' } });
    // Without a length to refuse it by, the body is cut off at the limit.
    expect(await call(port, { ...as, method: 'POST', path: '/api/v1/services', body: huge, headers: { 'transfer-encoding': 'chunked' } })).toMatchObject({ status: 413 });

    const queries: [string, RegExp][] = [
      ['/api/v1/services?limit=0', /^query limit: /],
      ['/api/v1/services?limit=1001', /^query limit: /],
      ['/api/v1/services?offset=-1', /^query offset: /],
      ['/api/v1/services?offset=two', /^query offset: /],
      ['/api/v1/services?status=sleeping', /^query status: /],
      ['/api/v1/services?limit=1&limit=2', /^query limit: give it once/],
      ['/api/v1/services?sort=name', /^query sort: unknown parameter \(known: offset, limit, status\)$/],
      ['/api/v1/servers?status=running', /^query status: unknown parameter/],
      ['/api/v1/services/Not_A_Name', /^name: use 1-63 lowercase/],
      ['/api/v1/services/sensor-1/logs?generation=0x10', /^query generation: expected a generation number$/],
    ];
    for (const [path, error] of queries) expect(await call(port, { ...as, path }), path).toMatchObject({ status: 400, body: { code: 'invalid', error: expect.stringMatching(error) } });
    expect(api.calls).toEqual([]);

    api.failure = new ServicesError('unavailable', 'the services store (PostgreSQL) is unreachable: connection refused');
    expect(await call(port, { ...as, path: '/api/v1/services' })).toMatchObject({ status: 503, body: { code: 'unavailable', error: 'the services store (PostgreSQL) is unreachable: connection refused' } });
    api.failure = new ServicesError('invalid', 'no agent has ever offered action "read-sensor"');
    expect(await post(JSON.stringify(SERVICE))).toMatchObject({ status: 400, body: { code: 'invalid', error: 'no agent has ever offered action "read-sensor"' } });
  });

  it('without a services engine every route answers its operators 503, after the login', async () => {
    const { port, alice } = await apiServer(false);
    const from = '127.0.0.9';
    for (const [method, path] of <[string, string][]>[['GET', '/api/v1/services'], ['POST', '/api/v1/services'], ['GET', '/api/v1/servers'], ['DELETE', '/api/v1/services/x']]) {
      expect(await call(port, { method, path, auth: alice, from, ...(method === 'POST' && { body: JSON.stringify(SERVICE) }) }), path).toMatchObject({
        status: 503,
        body: { code: 'unavailable', error: 'services engine is not enabled (engines.services.enabled in the hub config)' },
      });
    }
    expect((await call(port, { path: '/api/v1/services', from })).status).toBe(401);
  });

  it('the hub serves the API on its HTTP port to the operators of its users file, read again as it changes; probes stay open', async () => {
    const hub = await startTestHub(cleanup, 'aedes');
    const operator = await addBrokerUser(hub.usersFile!, 'carol', 'operator');
    const agent = await addBrokerUser(hub.usersFile!, 'dave', 'agent');
    // Each try from its own address: the tries before the hub reads the accounts are failed logins.
    let attempt = 0;
    const answer = await waitFor('the hub read the new accounts', async () => {
      const r = await call(hub.httpPort, { path: '/api/v1/services', auth: ['carol', operator], from: `127.0.1.${++attempt}` });
      return r.status !== 401 && r;
    });
    // Past the login: what the engine says (503 on a hub without it), never a refusal of the account.
    expect([401, 403, 404]).not.toContain(answer.status);
    expect(await call(hub.httpPort, { path: '/api/v1/services', auth: ['dave', agent], from: '127.0.0.10' })).toMatchObject({ status: 403, body: { code: 'forbidden' } });
    const none = await call(hub.httpPort, { path: '/api/v1/servers', from: '127.0.0.10' });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Basic realm="pushfleet"');
    expect((await call(hub.httpPort, { path: '/healthz', from: '127.0.0.10' })).status).toBe(200);
  });
});

import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiAuth } from '../../src/hub/api/api-auth.js';
import { apiRouter } from '../../src/hub/api/api-router.js';
import { EventStreams, EVENT_STREAM_DEFAULTS } from '../../src/hub/api/event-streams.js';
import { HubEvents } from '../../src/hub/hub-events.js';
import type { LoginRefusal } from '../../src/hub/users/login-refusal.js';
import { generateCredential } from '../../src/hub/users/password-hash.js';
import { newUser, readUsers, writeUsers, type UserEntry } from '../../src/hub/users/users-file.js';
import { addBrokerUser } from '../support/broker-users.js';
import { startTestHub } from '../support/test-hub.js';
import { createLogger } from '../../src/shared/logger.js';
import { Cleanup } from '../support/cleanup.js';
import { expectSpecAnswer, expectSpecResponse, loadSpec } from '../support/openapi.js';
import { waitFor } from '../support/wait.js';

const spec = await loadSpec();

type Answer = { status: number; headers: IncomingMessage['headers']; body: any };

/** A request whose JSON answer is checked against openapi.yaml. */
function call(port: number, method: string, path: string, token?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => {
        try {
          const answer = { status: res.statusCode!, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
          expectSpecAnswer(spec, method, path, answer);
          resolve(answer);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** An open stream: its status and everything it sent so far. */
type Stream = { res: IncomingMessage; text: () => string; ended: Promise<void>; close(): void };

function openStream(port: number, path: string, token?: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      const ended = new Promise<void>((done) => res.on('close', () => done()));
      resolve({ res, text: () => text, ended, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('GET /api/v1/events: the live stream', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** The API on a real HTTP server, with a viewer (vera) and an agent account (bob), and at most `maxStreams` streams. */
  async function api(maxStreams = 4) {
    const log = createLogger('test', 'silent');
    const accounts = new Map<string, UserEntry>();
    const token = (name: string, role: 'viewer' | 'agent') => {
      const { password, hash } = generateCredential();
      accounts.set(name, newUser(role, hash));
      return `${name}:${password}`;
    };
    const vera = token('vera', 'viewer');
    const bob = token('bob', 'agent');
    const events = new HubEvents();
    const refused: LoginRefusal[] = [];
    const streams = new EventStreams(events, { ...EVENT_STREAM_DEFAULTS, maxStreams, coalesceMs: 20 });
    streams.start();
    const app = express();
    app.use('/api/v1', apiRouter({ auth: new ApiAuth({ users: () => accounts, log, onRefused: (r) => refused.push(r) }), events, streams, services: () => undefined, log }));
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.defer(() => new Promise((resolve) => server.close(resolve)));
    cleanup.defer(() => streams.stop());
    return { port: (server.address() as AddressInfo).port, vera, bob, events, streams, refused };
  }

  const ticketOf = async (port: number, token: string): Promise<string> => {
    const answer = await call(port, 'POST', '/api/v1/events/tickets', token);
    expect(answer.status).toBe(201);
    return answer.body.ticket as string;
  };

  it('opens with a ticket of an authenticated POST, once, and carries each change', async () => {
    const { port, vera, events } = await api();
    const issued = await call(port, 'POST', '/api/v1/events/tickets', vera);
    expect(issued.body).toMatchObject({ caller: { name: 'vera', role: 'viewer' } });
    const path = `/api/v1/events?ticket=${issued.body.ticket as string}`;
    const stream = await openStream(port, path);
    cleanup.defer(() => stream.close());
    expect(stream.res.statusCode).toBe(200);
    expectSpecResponse(spec, 'GET', '/events', { status: 200, headers: stream.res.headers, body: '' });
    expect(stream.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(stream.res.headers['cache-control']).toBe('no-store');
    events.changed('rollouts', 'web.production.0123456789ab');
    events.changed('agents');
    await waitFor(() => `both changes on the stream; got ${JSON.stringify(stream.text())}`, () => stream.text().includes('"agents"'));
    expect(stream.text()).toBe('retry: 3000\n: open\n\nevent: changed\ndata: {"area":"rollouts","id":"web.production.0123456789ab"}\n\nevent: changed\ndata: {"area":"agents"}\n\n');

    // The URL (which a proxy or browser history may keep) opens nothing again.
    const again = await call(port, 'GET', path);
    expect(again).toMatchObject({ status: 401, body: { code: 'unauthorized', error: expect.stringContaining('POST /api/v1/events/tickets') } });
  });

  it("a real hub ends a stream once its account is removed from the users file, as the broker ends the account's sessions", async () => {
    const hub = await startTestHub(cleanup, 'aedes');
    const token = `vera:${await addBrokerUser(hub.usersFile!, 'vera', 'viewer')}`;
    // Asked every 300 ms: the hub reads the file within a second, and each refusal before counts against this address.
    await waitFor('the hub takes the new account', async () => (await new Promise((r) => setTimeout(r, 300)), (await call(hub.httpPort, 'GET', '/api/v1/hub', token)).status === 200), 15_000);
    const stream = await openStream(hub.httpPort, '/api/v1/events', token);
    cleanup.defer(() => stream.close());
    expect(stream.res.statusCode).toBe(200);
    const users = readUsers(hub.usersFile!);
    users.delete('vera');
    writeUsers(hub.usersFile!, users);
    await Promise.race([stream.ended, new Promise((_, reject) => setTimeout(() => reject(new Error('the stream outlived its account')), 10_000))]);
    expect((await call(hub.httpPort, 'POST', '/api/v1/events/tickets', token)).status).toBe(401);
  });

  it('refuses a stream without a good ticket or token, and a ticket without a token', async () => {
    const { port, vera, bob, refused } = await api();
    expect((await call(port, 'GET', '/api/v1/events')).status).toBe(401);
    expect((await call(port, 'GET', '/api/v1/events?ticket=made-up')).status).toBe(401);
    expect(refused).toEqual([{ name: null, address: '127.0.0.1', reason: 'stream ticket unknown, used or expired' }]);
    expect((await call(port, 'GET', '/api/v1/events', 'vera:wrong')).status).toBe(401);
    expect((await call(port, 'POST', '/api/v1/events/tickets')).status).toBe(401);
    expect((await call(port, 'POST', '/api/v1/events/tickets', 'vera:wrong')).status).toBe(401);
    expect(await call(port, 'POST', '/api/v1/events/tickets', bob)).toMatchObject({ status: 403, body: { code: 'forbidden' } });
    expect((await call(port, 'GET', `/api/v1/events?ticket=${await ticketOf(port, vera)}&extra=1`)).status).toBe(400);
    // A token in the header (curl) opens it too.
    const stream = await openStream(port, '/api/v1/events', vera);
    cleanup.defer(() => stream.close());
    expect(stream.res.statusCode).toBe(200);
  });

  it('takes at most maxStreams at once, frees a slot when a client goes, and ends all when the hub stops', async () => {
    const { port, vera, streams } = await api(2);
    const first = await openStream(port, `/api/v1/events?ticket=${await ticketOf(port, vera)}`);
    const second = await openStream(port, `/api/v1/events?ticket=${await ticketOf(port, vera)}`);
    const full = await call(port, 'GET', `/api/v1/events?ticket=${await ticketOf(port, vera)}`);
    expect(full).toMatchObject({ status: 503, body: { code: 'too-many-streams' } });
    expect(full.headers['retry-after']).toBe('10');
    first.close();
    await waitFor('the closed stream given back', () => streams.open === 1);
    const third = await openStream(port, `/api/v1/events?ticket=${await ticketOf(port, vera)}`);
    expect(third.res.statusCode).toBe(200);
    streams.stop();
    await Promise.all([second.ended, third.ended]);
    expect(streams.open).toBe(0);
  });
});

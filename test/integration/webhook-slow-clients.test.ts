import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { SECRET, startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const SLOW = 2000;
const IDLE = 20;

type Client = { socket: Socket; answer: string; closed: boolean };

/** A loopback connection that sends `head` (if any) and then nothing but what the test trickles. */
function open(port: number, head: string | undefined): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const client: Client = { socket, answer: '', closed: false };
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (client.answer += d));
    socket.on('close', () => (client.closed = true));
    socket.once('error', () => undefined);
    socket.once('connect', () => {
      if (head) socket.write(head);
      resolve(client);
    });
    socket.once('error', reject);
  });
}

describe('webhook with slow clients', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it(`answers a genuine push 200 while ${SLOW} connections trickle their bodies, and cuts those and idle ones at the deadline`, async () => {
    const hub = await startTestHub(cleanup, 'aedes');
    const seen = await watch(cleanup, hub.mqttUrl, 'github/#');
    const { body, headers } = signedRequest(SECRET, 'push', githubPushPayload({ after: 'a'.repeat(40) }), 'trickle');
    // Headers of a real push, then its body one byte every 3 s: it would take hours to arrive.
    const head =
      `POST /webhook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') +
      '\r\n';
    const clients: Client[] = [];
    cleanup.defer(() => clients.forEach((c) => c.socket.destroy()));
    for (let i = 0; i < SLOW; i += 100) clients.push(...(await Promise.all(Array.from({ length: 100 }, () => open(hub.httpPort, head)))));
    // Connections that send nothing, and ones whose headers never end.
    const idle = await Promise.all(Array.from({ length: IDLE }, (_, i) => open(hub.httpPort, i % 2 ? undefined : 'POST /webhook HTTP/1.1\r\nhost: x\r\n')));
    cleanup.defer(() => idle.forEach((c) => c.socket.destroy()));
    let sent = 0;
    const trickle = setInterval(() => {
      for (const c of clients) if (!c.closed) c.socket.write(body[sent]!);
      sent++;
    }, 3000);
    cleanup.defer(() => clearInterval(trickle));
    await new Promise((r) => setTimeout(r, 500));

    const started = performance.now();
    const genuine = await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: 'b'.repeat(40) }), 'genuine-1'));
    const tookMs = performance.now() - started;
    expect({ status: genuine.status, body: genuine.body }).toMatchObject({ status: 200, body: { delivery: 'genuine-1', state: 'published' } });
    // Answered while every slow connection was still open.
    expect(clients.filter((c) => c.closed).length).toBe(0);
    await waitFor('the genuine push', () => seen.messages.length === 1);
    console.log(`genuine push answered in ${Math.round(tookMs)} ms with ${SLOW} slow connections open`);

    // webhook.bodyTimeoutMs (10 s by default) cuts them, with a 408 saying why.
    await waitFor('the slow and idle connections to be cut', () => clients.every((c) => c.closed) && idle.every((c) => c.closed), 30_000);
    expect(clients.filter((c) => !c.answer.startsWith('HTTP/1.1 408'))).toHaveLength(0);
    expect(clients[0]!.answer).toMatch(/"error":"the body did not arrive within 10000 ms \(webhook.bodyTimeoutMs\)"/);
    // node:http's own refusal, as one line of JSON like every other answer.
    expect(idle.filter((c) => !/^HTTP\/1.1 408 [^]*\r\n\r\n\{"error":"the request did not arrive in time[^"]*"\}$/.test(c.answer))).toHaveLength(0);
    expect(seen.messages).toHaveLength(1);
  });
});

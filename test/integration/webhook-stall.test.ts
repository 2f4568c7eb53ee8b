import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { hubProcesses } from '../support/hub-process.js';
import { githubPushPayload, postWebhook, signedRequest, type SignedRequest } from '../support/push-payload.js';
import { SECRET, startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const SHA = 'd'.repeat(40);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A broker that stops answering (mosquitto under SIGSTOP keeps its sockets but reads nothing) past
 * publishTimeoutMs. Only an external broker can stall apart from the hub: the embedded one runs
 * on the hub's own event loop.
 */
describe('webhook with a stalled broker (mosquitto under SIGSTOP)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function stalledHub(webhook: Record<string, unknown>) {
    const hub = await startTestHub(cleanup, 'mosquitto', { webhook: { secret: SECRET, publishTimeoutMs: 300, ...webhook } });
    const seen = await watch(cleanup, hub.mqttUrl, 'github/#');
    // Resumed before the hub and broker are stopped, whatever the test did.
    cleanup.defer(() => hub.broker!.resume());
    const ids = () => seen.messages.map((m) => JSON.parse(m.payload).deliveryId as string).sort();
    return { hub, seen, ids, post: (req: SignedRequest) => postWebhook(hub.webhookUrl, req) };
  }

  it('answers 202 (not 503) for pushes held while it stalls, and each delivery reaches github/# once through redeliveries', async () => {
    const { hub, seen, ids, post } = await stalledHub({});
    const reqs = ['stall-1', 'stall-2', 'stall-3'].map((id) => signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), id));
    hub.broker!.pause();

    const first = await Promise.all(reqs.map(post));
    expect(first.map((a) => [a.status, a.body.state, a.body.duplicate])).toEqual(Array(3).fill([202, 'publishing', false]));
    expect(first[0]!.body.message).toMatch(/not acknowledged/);
    // GitHub's redeliveries while the broker is still stalled: answered at once, nothing sent again.
    const during = await Promise.all(reqs.map(post));
    expect(during.map((a) => [a.status, a.body.state, a.body.duplicate])).toEqual(Array(3).fill([202, 'publishing', true]));
    expect(seen.messages).toHaveLength(0);
    // Connected, but not taking pushes as promised: the probe says so.
    const readyz = () => fetch(`http://127.0.0.1:${hub.httpPort}/readyz`).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: string } }));
    expect(await readyz()).toMatchObject({ status: 503, body: { error: expect.stringMatching(/not acknowledged 3 push/) } });

    hub.broker!.resume();
    await waitFor('the held pushes', () => seen.messages.length >= 3);
    await waitFor('/readyz 200 once they are acknowledged', async () => (await readyz()).status === 200);
    await waitFor('the redelivery to be answered 200', async () => (await post(reqs[2]!)).status === 200);
    const after = await Promise.all(reqs.map(post));
    expect(after.map((a) => [a.status, a.body.state, a.body.duplicate])).toEqual(Array(3).fill([200, 'published', true]));
    await sleep(300);
    expect(ids()).toEqual(['stall-1', 'stall-2', 'stall-3']);
  });

  it('refuses a push with 503 beyond maxInFlight while pushes await the broker, and never publishes that copy', async () => {
    const { hub, seen, ids, post } = await stalledHub({ maxInFlight: 2 });
    const [a, b, c] = ['held-a', 'held-b', 'refused-c'].map((id) => signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), id));
    hub.broker!.pause();
    expect((await Promise.all([post(a!), post(b!)])).map((r) => r.status)).toEqual([202, 202]);

    const res = await fetch(hub.webhookUrl, { method: 'POST', headers: c!.headers, body: c!.body });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(((await res.json()) as { error: string }).error).toMatch(/maxInFlight.*nothing was published/);

    hub.broker!.resume();
    await waitFor('the held pushes', () => seen.messages.length >= 2);
    await sleep(300);
    expect(ids()).toEqual(['held-a', 'held-b']);
    // Its redelivery, with room again, goes through once.
    expect(await post(c!)).toMatchObject({ status: 200, body: { duplicate: false, state: 'published' } });
    await waitFor('the redelivered push', () => seen.messages.length >= 3);
    await sleep(300);
    expect(ids()).toEqual(['held-a', 'held-b', 'refused-c']);
  });
});

describe('webhook when the broker connection breaks with a push unacknowledged', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** The local port of the TCP connection process `pid` holds to the broker's `port`. */
  function hubSidePort(pid: number, port: number): string {
    const line = execFileSync('ss', ['-tnpH', 'dst', `127.0.0.1:${port}`], { encoding: 'utf8' })
      .split('\n')
      .find((l) => l.includes(`pid=${pid},`));
    const local = line && /127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:\d+/.exec(line)?.[1];
    if (!local) throw new Error(`no connection of ${pid} to port ${port}:\n${line}`);
    return local;
  }

  /** Bytes waiting unread in the broker's end of that connection (its Recv-Q). */
  const brokerBacklog = (port: number, local: string): number =>
    Number(execFileSync('ss', ['-tnH', 'src', `127.0.0.1:${port}`, 'dst', `127.0.0.1:${local}`], { encoding: 'utf8' }).trim().split(/\s+/)[1] ?? 0);

  /** Aborts, on the broker's side, that connection. */
  const abortBrokerSide = (port: number, local: string): void => void execFileSync('ss', ['-K', 'src', `127.0.0.1:${port}`, 'dst', `127.0.0.1:${local}`]);

  it('does not resend it after reconnecting: the broker may have it, so the delivery stays in doubt', async () => {
    const hubs = await hubProcesses(cleanup, 'mosquitto', { publishTimeoutMs: 300 });
    const hub = await hubs.start();
    const seen = await watch(cleanup, hubs.mqttUrl, 'github/#');
    const req = signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), 'broken-1');
    hubs.broker!.pause();
    cleanup.defer(() => hubs.broker!.resume());
    expect(await postWebhook(hubs.webhookUrl, req)).toMatchObject({ status: 202, body: { state: 'publishing' } });
    // The connection breaks with the push in the stalled broker's socket: the broker reads it
    // when it resumes, and the hub, reconnected, never hears a PUBACK for it.
    // Only once the push's bytes are in the stalled broker's socket: on a loaded machine the 202
    // can come before the hub's client has written them, and a push never sent is not in doubt.
    const local = hubSidePort(hub.pid, hubs.broker!.port);
    await waitFor('the push in the broker\'s socket', () => brokerBacklog(hubs.broker!.port, local) > 0);
    abortBrokerSide(hubs.broker!.port, local);
    await hub.waitForLog('the broken connection', (l) => l.msg === 'MQTT broker unreachable; retrying');
    hubs.broker!.resume();
    await hub.waitForLog('the reconnect', (l) => l.msg === 'reconnected to MQTT broker');
    await waitFor('the push the broker read', () => seen.messages.length > 0);
    await sleep(1000);
    expect(seen.messages.map((m) => JSON.parse(m.payload).deliveryId)).toEqual(['broken-1']);
    expect(await postWebhook(hubs.webhookUrl, req)).toMatchObject({ status: 202, body: { state: 'in-doubt', duplicate: true } });
    await sleep(300);
    expect(seen.messages).toHaveLength(1);
  });
});

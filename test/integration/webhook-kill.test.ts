import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { hubProcesses } from '../support/hub-process.js';
import { githubPushPayload, postWebhook, signedRequest, type SignedRequest } from '../support/push-payload.js';
import { BROKERS, SECRET, type BrokerKind } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const SHA = 'e'.repeat(40);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Hub processes on one state dir, and one github/# subscriber for the whole test. */
async function hubsAndSubscriber(cleanup: Cleanup, kind: BrokerKind) {
  const { broker, start, mqttUrl, webhookUrl } = await hubProcesses(cleanup, kind, { publishTimeoutMs: 300 });
  // It reconnects to an embedded broker after each hub start.
  const messages: string[] = [];
  const subscriber = mqtt.connect(mqttUrl, { reconnectPeriod: 100 });
  cleanup.defer(() => subscriber.endAsync(true));
  subscriber.on('connect', () => void subscriber.subscribe('github/#', { qos: 1 }));
  subscriber.on('message', (_topic, payload) => void messages.push(JSON.parse(payload.toString()).deliveryId));
  const post = (req: SignedRequest) => postWebhook(webhookUrl, req);
  return { broker, start, messages, post, subscriber };
}

const countOf = (messages: string[]) => messages.reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<string, number>());

describe('webhook deliveries across a hub kill -9', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('never publishes an in-doubt delivery again: pushes the hub had not seen acknowledged when it was killed get 202 in-doubt', async () => {
    const { broker, start, messages, post, subscriber } = await hubsAndSubscriber(cleanup, 'mosquitto');
    let hub = await start();
    await waitFor('the subscriber', () => subscriber.connected);
    await sleep(100);
    const done = signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), 'done-1');
    expect((await post(done)).status).toBe(200);

    broker!.pause();
    const doubtful = ['doubt-1', 'doubt-2'].map((id) => signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), id));
    const held = await Promise.all(doubtful.map(post));
    expect(held.map((r) => [r.status, r.body.state])).toEqual([[202, 'publishing'], [202, 'publishing']]);
    // The worst case for a redelivery: the hub stops (SIGSTOP, it reads nothing more), the broker
    // resumes and delivers both pushes, and its PUBACKs never reach the hub before the kill.
    process.kill(hub.pid, 'SIGSTOP');
    broker!.resume();
    await waitFor('the pushes the hub had sent', () => messages.length >= 3);
    await hub.stop('SIGKILL');

    hub = await start();
    const answers = await Promise.all([done, ...doubtful].map(post));
    expect(answers.map((r) => [r.status, r.body.state, r.body.duplicate])).toEqual([
      [200, 'published', true],
      [202, 'in-doubt', true],
      [202, 'in-doubt', true],
    ]);
    expect(answers[1]!.body.message).toMatch(/not published again/);
    const fresh = signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), 'fresh-1');
    expect(await post(fresh)).toMatchObject({ status: 200, body: { state: 'published', duplicate: false } });
    await waitFor('the fresh push', () => messages.includes('fresh-1'));
    await sleep(300);
    expect(messages.sort()).toEqual(['done-1', 'doubt-1', 'doubt-2', 'fresh-1']);
  });

  it.each(BROKERS)('publishes each delivery at most once when the hub is killed -9 during a burst and every delivery is redelivered (%s)', async (kind) => {
    const { start, messages, post, subscriber } = await hubsAndSubscriber(cleanup, kind);
    let hub = await start();
    await waitFor('the subscriber', () => subscriber.connected);
    await sleep(100);
    const reqs = Array.from({ length: 200 }, (_, i) => signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), `burst-${i}`));
    const statuses = new Map<string, number>();
    // 20 at a time; the kill lands while some are being recorded, published or marked.
    const sending = (async () => {
      for (let i = 0; i < reqs.length; i += 20) {
        await Promise.all(reqs.slice(i, i + 20).map((r) => post(r).then((a) => statuses.set(r.headers['x-github-delivery']!, a.status), () => undefined)));
      }
    })();
    await waitFor('some pushes answered', () => statuses.size >= 30);
    await hub.stop('SIGKILL');
    await sending;

    hub = await start();
    await waitFor('the subscriber back', () => subscriber.connected);
    const again = await Promise.all(reqs.map(post));
    // Every copy is a 2xx: published now, published before (duplicate), or in doubt.
    expect(again.filter((a) => a.status !== 200 && a.status !== 202)).toEqual([]);
    await sleep(1000);
    const counts = countOf(messages);
    expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
    if (kind === 'mosquitto') {
      // The broker outlived the hub: every 200 of either run reached the subscriber.
      const answered200 = [...statuses].filter(([, s]) => s === 200).map(([id]) => id);
      expect(answered200.filter((id) => !counts.has(id))).toEqual([]);
    }
  });
});

import { request, type ClientRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { decode, PushMessage } from '../../src/shared/messages.js';
import { Cleanup } from '../support/cleanup.js';
import { githubPushPayload, postWebhook, sign, signedRequest } from '../support/push-payload.js';
import { BROKERS, SECRET, startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const SHA = 'c'.repeat(40);

describe.each(BROKERS)('webhook over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function setup(overrides: Record<string, unknown> = {}) {
    const hub = await startTestHub(cleanup, broker, overrides);
    // Everything the hub could publish to: the push topics and the retained heads.
    const seen = await watch(cleanup, hub.mqttUrl, 'github/#');
    const heads = await watch(cleanup, hub.mqttUrl, 'pushfleet/heads/#');
    const post = (headers: Record<string, string>, body: string) =>
      fetch(hub.webhookUrl, { method: 'POST', headers, body }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));
    /** Proves nothing was published: a valid push sent afterwards is the first message seen. */
    const expectNothingPublished = async () => {
      const ok = await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: SHA, repo: 'acme/marker' })));
      expect(ok.status).toBe(200);
      await waitFor('the marker push and head', () => seen.messages.length > 0 && heads.messages.length > 0);
      expect(seen.messages.map((m) => JSON.parse(m.payload).repo)).toEqual(['acme/marker']);
      expect(heads.messages.map((m) => m.topic)).toEqual(['pushfleet/heads/acme/marker/refs%2Fheads%2Fmain']);
    };
    return { hub, seen, heads, post, expectNothingPublished };
  }

  it('publishes an accepted push once, QoS 1, with the documented message, and the retained head', async () => {
    const { hub, seen, heads } = await setup();
    const req = signedRequest(SECRET, 'push', githubPushPayload({ after: SHA, ref: 'refs/heads/release/1.2' }), 'delivery-1');
    const res = await postWebhook(hub.webhookUrl, req);
    expect(res).toEqual({ status: 200, body: { ok: true, delivery: 'delivery-1', topic: 'github/acme/web', duplicate: false, state: 'published' } });
    // The answer comes after the broker's PUBACK, so the message is already routed.
    await waitFor('message', () => seen.messages.length === 1 && heads.messages.length === 1);
    const msg = decode(PushMessage, seen.messages[0]!.payload);
    expect(msg.ok && msg.value).toMatchObject({ deliveryId: 'delivery-1', repo: 'acme/web', branch: 'release/1.2', after: SHA, source: 'github' });
    expect(heads.messages[0]).toMatchObject({ topic: 'pushfleet/heads/acme/web/refs%2Fheads%2Frelease%2F1.2' });

    const again = await postWebhook(hub.webhookUrl, req);
    expect(again).toEqual({ status: 200, body: { ok: true, delivery: 'delivery-1', topic: 'github/acme/web', duplicate: true, state: 'published' } });
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.messages).toHaveLength(1);
  });

  it('accepts the form-encoded content type GitHub can be set to', async () => {
    const { hub, seen } = await setup();
    const body = `payload=${encodeURIComponent(JSON.stringify(githubPushPayload({ after: SHA })))}`;
    const res = await fetch(hub.webhookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-github-event': 'push', 'x-github-delivery': 'form-1', 'x-hub-signature-256': sign(SECRET, body) },
      body,
    });
    expect(res.status).toBe(200);
    await waitFor('message', () => seen.messages.length === 1);
  });

  it('answers ping and acknowledges other events without publishing', async () => {
    const { hub, expectNothingPublished } = await setup();
    const ping = await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'ping', { zen: 'Keep it logically awesome.', hook_id: 1 }));
    expect(ping).toMatchObject({ status: 200, body: { ok: true, event: 'ping' } });
    const issue = await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'issues', { action: 'opened' }));
    expect(issue).toMatchObject({ status: 200, body: { ok: true, event: 'issues', ignored: true } });
    await expectNothingPublished();
  });

  it('rejects every bad input with its status and a message, publishing nothing', async () => {
    const { post, expectNothingPublished } = await setup({ webhook: { secret: SECRET, maxBodyBytes: 64 * 1024 } });
    const good = signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }));
    const withHeaders = (h: Record<string, string | undefined>) => Object.fromEntries(Object.entries({ ...good.headers, ...h }).filter(([, v]) => v !== undefined)) as Record<string, string>;
    const signed = (body: string, extra: Record<string, string> = {}) => withHeaders({ 'x-hub-signature-256': sign(SECRET, body), ...extra });

    const cases: [string, Promise<{ status: number; body: Record<string, unknown> }>, number, RegExp][] = [
      ['no signature', post(withHeaders({ 'x-hub-signature-256': undefined }), good.body), 401, /X-Hub-Signature-256/],
      ['wrong secret', post(withHeaders({ 'x-hub-signature-256': sign('another-secret-000000', good.body) }), good.body), 401, /does not match/],
      ['tampered body', post(good.headers, good.body.replace('"ada"', '"eve"')), 401, /does not match/],
      ['malformed signature', post(withHeaders({ 'x-hub-signature-256': 'sha1=abc' }), good.body), 401, /malformed/],
      ['unparsable body', post(signed('{"ref":'), '{"ref":'), 400, /not valid JSON/],
      ['schema-invalid body', post(signed('{"ref":"refs/heads/main"}'), '{"ref":"refs/heads/main"}'), 400, /not a valid push payload: .*after/],
      ['bad ref', (() => { const b = JSON.stringify(githubPushPayload({ after: SHA, ref: 'refs/heads/a..b' })); return post(signed(b), b); })(), 400, /ref/],
      ['missing delivery header', post(withHeaders({ 'x-github-delivery': undefined }), good.body), 400, /x-github-delivery/],
      ['body over the limit', (() => { const b = 'x'.repeat(70 * 1024); return post(signed(b), b); })(), 413, /limit/],
    ];
    for (const [name, response, status, message] of cases) {
      const res = await response;
      expect({ name, status: res.status }).toEqual({ name, status });
      expect(String(res.body.error)).toMatch(message);
    }
    await expectNothingPublished();
  });
});

describe('webhook without a broker', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('answers 503 while the broker is unreachable, and /readyz says so', async () => {
    const hub = await startTestHub(cleanup, 'mosquitto');
    const base = hub.webhookUrl.replace('/webhook', '');
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    await hub.broker!.stop();
    await waitFor('readyz to fail', async () => (await fetch(`${base}/readyz`)).status === 503);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const res = await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: SHA })));
    expect(res.status).toBe(503);
    expect(res.body.error).toMatch(/redeliver/);
  });
});

describe('webhook load limit', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** Starts a signed push whose body is sent but for its last 100 bytes, so the hub holds the rest. */
  function halfSent(url: string, delivery: string): { req: ClientRequest; finish(): Promise<number> } {
    const { body, headers } = signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), delivery);
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } });
    const status = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
    });
    status.catch(() => {}); // the aborted one never answers; its caller does not wait for it
    req.write(body.slice(0, -100));
    return { req, finish: () => (req.end(body.slice(-100)), status) };
  }

  it('answers 503 with Retry-After beyond maxBufferedBytes, and takes pushes again once the bytes are freed', async () => {
    const size = JSON.stringify(githubPushPayload({ after: SHA })).length;
    // Room for one body and a bit: a second one while the first is held does not fit.
    const limit = size + 1000;
    const hub = await startTestHub(cleanup, 'aedes', { webhook: { secret: SECRET, maxBodyBytes: limit, maxBufferedBytes: limit } });
    const seen = await watch(cleanup, hub.mqttUrl, 'github/#');
    const slow = halfSent(hub.webhookUrl, 'slow-1');
    await new Promise((r) => setTimeout(r, 100));

    const refused = await fetch(hub.webhookUrl, { method: 'POST', ...signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), 'refused-1') });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: string }).error).toMatch(/maxBufferedBytes.*redeliver/);

    expect(await slow.finish()).toBe(200);
    const after = await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), 'after-1'));
    expect(after.status).toBe(200);

    // A client that gives up mid-body frees its bytes too.
    const aborted = halfSent(hub.webhookUrl, 'aborted-1');
    await new Promise((r) => setTimeout(r, 100));
    aborted.req.destroy();
    await waitFor('the aborted request to free its bytes', async () =>
      (await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), 'after-2'))).status === 200);

    await waitFor('messages', () => seen.messages.length === 3);
    expect(seen.messages.map((m) => JSON.parse(m.payload).deliveryId).sort()).toEqual(['after-1', 'after-2', 'slow-1']);
  });
});

describe('webhook deliveries', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('publishes a delivery once: copies sent at the same time and after a hub restart are duplicates', async () => {
    const first = await startTestHub(cleanup, 'aedes');
    const seen = await watch(cleanup, first.mqttUrl, 'github/#');
    const req = signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), 'same-1');
    const answers = await Promise.all(Array.from({ length: 8 }, () => postWebhook(first.webhookUrl, req)));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    expect(answers.filter((a) => a.body.duplicate === false)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.messages).toHaveLength(1);
    await first.stop();

    const second = await startTestHub(cleanup, 'aedes', { stateDir: first.stateDir });
    const seenAfter = await watch(cleanup, second.mqttUrl, 'github/#');
    expect(await postWebhook(second.webhookUrl, req)).toEqual({ status: 200, body: { ok: true, delivery: 'same-1', topic: 'github/acme/web', duplicate: true, state: 'published' } });
    await new Promise((r) => setTimeout(r, 200));
    expect(seenAfter.messages).toHaveLength(0);
  });
});

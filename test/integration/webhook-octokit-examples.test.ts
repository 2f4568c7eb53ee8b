import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { decode, PushMessage } from '../../src/shared/messages.js';
import { Cleanup } from '../support/cleanup.js';
import { postWebhook, signedRequest } from '../support/push-payload.js';
import { BROKERS, SECRET, startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

/** Every payload of @octokit/webhooks-examples (api.github.com): real GitHub events of every kind. */
const EXAMPLES = createRequire(import.meta.url)('@octokit/webhooks-examples') as { name: string; examples: Record<string, any>[] }[];
const DELIVERIES = EXAMPLES.flatMap(({ name, examples }) => examples.map((payload, i) => ({ event: name, payload, id: `${name.replace(/_/g, '-')}-${i}` })));

describe.each(BROKERS)('webhook replaying @octokit/webhooks-examples over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it(`answers all ${DELIVERIES.length} payloads of ${EXAMPLES.length} event types 2xx and publishes every push as GitHub described it`, async () => {
    expect({ events: EXAMPLES.length, payloads: DELIVERIES.length }).toEqual({ events: 58, payloads: 329 });
    const hub = await startTestHub(cleanup, broker);
    const seen = await watch(cleanup, hub.mqttUrl, 'github/#');
    const answers: { event: string; id: string; status: number; body: any }[] = [];
    for (let i = 0; i < DELIVERIES.length; i += 20) {
      const batch = DELIVERIES.slice(i, i + 20);
      answers.push(...(await Promise.all(batch.map(async (d) => ({ event: d.event, id: d.id, ...(await postWebhook(hub.webhookUrl, signedRequest(SECRET, d.event, d.payload, d.id))) })))));
    }
    expect(answers.filter((a) => a.status < 200 || a.status > 299)).toEqual([]);

    const pushes = DELIVERIES.filter((d) => d.event === 'push');
    expect(pushes).toHaveLength(7);
    for (const a of answers.filter((x) => x.event === 'push')) expect(a).toMatchObject({ status: 200, body: { state: 'published', duplicate: false } });
    await waitFor('every push', () => seen.messages.length >= pushes.length);
    expect(seen.messages).toHaveLength(pushes.length);
    for (const { id, payload } of pushes) {
      const message = seen.messages.find((m) => JSON.parse(m.payload).deliveryId === id);
      expect(message?.topic).toBe(`github/${payload.repository.full_name}`);
      const decoded = decode(PushMessage, message!.payload);
      expect(decoded.ok && decoded.value).toMatchObject({
        deliveryId: id,
        source: 'github',
        repo: payload.repository.full_name,
        ref: payload.ref,
        before: payload.before,
        after: payload.after,
        created: payload.created,
        deleted: payload.deleted,
        forced: payload.forced,
        cloneUrl: payload.repository.clone_url,
        headCommit: payload.head_commit ? expect.objectContaining({ id: payload.head_commit.id, message: payload.head_commit.message }) : null,
      });
    }
  });
});

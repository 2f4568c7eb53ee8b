import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { fillDisk, smallDisk } from '../support/small-disk.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { BROKERS, SECRET, startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const SHA = 'f'.repeat(40);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(BROKERS)('webhook with the state dir on a full disk (%s)', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('answers 503 and publishes nothing while the delivery cannot be recorded; after space is freed each goes through once', async () => {
    const stateDir = smallDisk(cleanup, '2m');
    const hub = await startTestHub(cleanup, broker, { stateDir });
    const seen = await watch(cleanup, hub.mqttUrl, 'github/#');
    const push = (id: string) => signedRequest(SECRET, 'push', githubPushPayload({ after: SHA }), id);
    expect((await postWebhook(hub.webhookUrl, push('before-full'))).status).toBe(200);

    fillDisk(join(stateDir, 'filler'));
    // SQLite may still write into space its files already hold: send until refusals come.
    const answers = new Map<string, { status: number; body: any }>();
    for (let i = 0; i < 300 && [...answers.values()].filter((a) => a.status === 503).length < 5; i++) {
      answers.set(`full-${i}`, await postWebhook(hub.webhookUrl, push(`full-${i}`)));
    }
    const refused = [...answers].filter(([, a]) => a.status === 503);
    expect(refused.length).toBe(5);
    expect([...answers.values()].filter((a) => a.status !== 200 && a.status !== 503)).toEqual([]);
    await sleep(500);
    const ids = () => seen.messages.map((m) => JSON.parse(m.payload).deliveryId as string);
    expect(ids().filter((id) => answers.get(id)?.status === 503)).toEqual([]);
    expect(refused[0]![1].body.error).toMatch(/could not be recorded \(database or disk is full\).*nothing was published/);

    rmSync(join(stateDir, 'filler'));
    const again = await Promise.all([...answers.keys()].map(async (id) => [id, await postWebhook(hub.webhookUrl, push(id))] as const));
    for (const [id, res] of again) {
      const wasRefused = answers.get(id)!.status === 503;
      expect({ id, status: res.status, duplicate: res.body.duplicate }).toEqual({ id, status: 200, duplicate: !wasRefused });
    }
    await waitFor('every delivery', () => new Set(ids()).size === answers.size + 1);
    await sleep(300);
    expect(ids().sort()).toEqual(['before-full', ...answers.keys()].sort());
  });
});

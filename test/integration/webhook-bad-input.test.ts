import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { hubProcesses } from '../support/hub-process.js';
import { githubPushPayload, sign, signedRequest } from '../support/push-payload.js';
import { SECRET } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

/** Bad input from the network: a 4xx with one line of JSON, no error-level log, nothing published. */
describe('webhook bad input (a real hub process, its log read)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('answers 400 to an empty body with a well-formed signature and to a ref git refuses, logging no error or stack', async () => {
    const hubs = await hubProcesses(cleanup, 'aedes');
    const hub = await hubs.start();
    const seen: string[] = [];
    const subscriber = await mqtt.connectAsync(hubs.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => subscriber.endAsync(true));
    subscriber.on('message', (topic) => void seen.push(topic));
    await subscriber.subscribeAsync(['github/#', 'pushfleet/heads/#'], { qos: 1 });
    const post = async (headers: Record<string, string>, body: string) => {
      const res = await fetch(hubs.webhookUrl, { method: 'POST', headers, body });
      return { status: res.status, text: await res.text() };
    };
    const pushHeaders = (body: string, signature = sign(SECRET, body)) => ({ ...signedRequest(SECRET, 'push', {}).headers, 'x-hub-signature-256': signature });
    const badRef = JSON.stringify(githubPushPayload({ after: 'a'.repeat(40), ref: 'refs/heads//a' }));

    const answers = [
      await post(pushHeaders(''), ''),
      await post(pushHeaders('', `sha256=${'0'.repeat(64)}`), ''),
      await post(pushHeaders(badRef), badRef),
    ];
    expect(answers.map((a) => a.status)).toEqual([400, 400, 400]);
    for (const a of answers) expect(a.text).toMatch(/^\{"error":"[^\n]+"\}$/);
    expect(JSON.parse(answers[0]!.text).error).toMatch(/empty body/);
    expect(JSON.parse(answers[2]!.text).error).toMatch(/ref/);

    // A good push afterwards is the only thing published, and the log holds no error for the bad ones.
    const good = signedRequest(SECRET, 'push', githubPushPayload({ after: 'b'.repeat(40) }));
    expect((await post(good.headers, good.body)).status).toBe(200);
    await waitFor('the good push and its head', () => seen.length === 2);
    expect(seen).toEqual(expect.arrayContaining(['github/acme/web', 'pushfleet/heads/acme/web/refs%2Fheads%2Fmain']));
    await hub.waitForLog('the good push', (l) => l.msg === 'push published');
    expect(hub.lines.filter((l) => l.level >= 50 || JSON.stringify(l).includes('"stack"'))).toEqual([]);
  });
});

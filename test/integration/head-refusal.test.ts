import { join } from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, ZERO_SHA, type PushMessage } from '../../src/shared/messages.js';
import { headTopic } from '../../src/shared/topics.js';
import { startAgentProcess } from '../support/agent-process.js';
import { startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';
import { unrestrictedUrl } from '../support/mosquitto.js';
import { BROKERS } from '../support/test-hub.js';

/** A head as anyone with broker access could publish it. */
const forgedHead = (sha: string, ref: string, receivedAt: string, deliveryId: string): PushMessage => ({
  v: SCHEMA_VERSION, deliveryId, source: 'post-receive', repo: 'acme/web', ref, refType: 'branch', branch: ref.replace('refs/heads/', ''), tag: null,
  before: ZERO_SHA, after: sha, created: false, deleted: false, forced: false, pusher: { name: 'mallory', email: null }, headCommit: null, cloneUrl: '', receivedAt,
});

describe.each(BROKERS)('heads only for their own topic, over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('refuses a retained head on a topic not its own and one dated in the future; genuine pushes still apply', async () => {
    const f = await startAppFixture(cleanup, broker);
    // Unsigned heads are refused outright by default (signed-actions.test.ts); opted out, their content is still checked.
    await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig], acceptUnsigned: true });
    const a = f.git.commit('A', { 'app.txt': 'A\n' });
    await f.push(a);
    await f.reached('deployed', a);
    const storedHeads = () => {
      const db = new Database(join(f.hub.stateDir, 'hub.sqlite'), { readonly: true });
      try {
        // Stored as published: the hub's signed envelope around the push.
        const push = (stored: string) => JSON.parse((JSON.parse(stored) as { payload: string }).payload) as PushMessage;
        return Object.fromEntries(db.prepare<[], { topic: string; payload: string }>('SELECT topic, payload FROM heads').all().map((r) => [r.topic, push(r.payload).deliveryId]));
      } finally {
        db.close();
      }
    };
    const mainTopic = headTopic('acme/web', 'refs/heads/main');
    const genuine = storedHeads()[mainTopic];
    expect(genuine).toBeDefined();

    // With the hub's own broker login: what the agent refuses by itself, not what an ACL keeps out.
    const forger = await mqtt.connectAsync(await unrestrictedUrl(f.hub.mqttUrl), { reconnectPeriod: 0 });
    cleanup.defer(() => forger.endAsync(true));
    const b = f.git.commit('B', { 'app.txt': 'B\n' });
    // A head of main on the topic of another ref (retained there for good).
    const extraTopic = headTopic('acme/web', 'refs/heads/extra');
    await forger.publishAsync(extraTopic, JSON.stringify(forgedHead(b, 'refs/heads/main', new Date().toISOString(), 'forged-topic')), { qos: 1, retain: true });
    const wrongTopic = await f.until('the head on the wrong topic refused', (s) => s.refusedHead?.deliveryId === 'forged-topic');
    expect(wrongTopic).toMatchObject({ state: 'deployed', sha: a, refusedHead: { topic: extraTopic, reason: expect.stringMatching(/belongs on pushfleet\/heads\/acme\/web\/refs%2Fheads%2Fmain/) } });

    // A head of main dated year 9999: it would outrank every genuine push after it.
    await forger.publishAsync(mainTopic, JSON.stringify(forgedHead(b, 'refs/heads/main', '9999-01-01T00:00:00.000Z', 'forged-future')), { qos: 1, retain: true });
    const future = await f.until('the future head refused', (s) => s.refusedHead?.deliveryId === 'forged-future');
    expect(future).toMatchObject({ state: 'deployed', sha: a, refusedHead: { reason: expect.stringMatching(/in the future/) } });
    await new Promise((r) => setTimeout(r, 1000));
    expect(f.git.headOf(f.path)).toBe(a);
    expect(storedHeads()).toEqual({ [mainTopic]: genuine });

    const c = f.git.commit('C', { 'app.txt': 'C\n' });
    expect((await f.push(c, a)).status).toBe(200);
    await f.reached('deployed', c);
    expect(Object.keys(storedHeads())).toEqual([mainTopic]);
    expect(storedHeads()[mainTopic]).not.toBe(genuine);
  });
});

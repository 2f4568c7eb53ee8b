import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, ZERO_SHA, type PushMessage } from '../../src/shared/messages.js';
import { agentPinTopic, agentRollbackTopic, agentStatusTopic, headTopic, nodeCommandTopic, ROLLOUT_CONTROL, ROLLOUT_SETTINGS, rolloutChannel, seedCommandTopic, SEED_DEFAULT_ROOT } from '../../src/shared/topics.js';
import { userUrl, withoutCredentials } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';
import { coordinosaurClient } from '../support/coordinosaur-client.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { SECRET, startTestHub, watch, type TestHub } from '../support/test-hub.js';
import { attempt, flood, type Outcome } from '../support/mqtt-attempt.js';
import { storedHeads } from '../support/hub-tables.js';
import { waitFor } from '../support/wait.js';

const OLD = 'a'.repeat(40);
const NEW = 'b'.repeat(40);
const ROLLOUT = rolloutChannel('web.production.0123456789ab');
const now = () => new Date().toISOString();

const head = (sha: string, ref: string, receivedAt = now()): string =>
  JSON.stringify({
    v: SCHEMA_VERSION, deliveryId: `forged-${sha.slice(0, 6)}`, source: 'post-receive', repo: 'acme/web', ref, refType: 'branch', branch: ref.replace('refs/heads/', ''), tag: null,
    before: ZERO_SHA, after: sha, created: false, deleted: false, forced: false, pusher: { name: 'mallory', email: null }, headCommit: null, cloneUrl: '', receivedAt,
  } satisfies PushMessage);
const directive = (kind: 'pin' | 'rollback') => JSON.stringify({ v: SCHEMA_VERSION, kind, app: 'web', sha: OLD, rolloutId: null, by: 'mallory', at: now() });
const control = (op: Record<string, unknown>) => JSON.stringify({ v: SCHEMA_VERSION, requestId: `r${Math.random().toString(36).slice(2)}`, by: 'mallory', ...op });

type Attacker = 'anonymous' | 'agent' | 'client' | 'operator';
type Attack = { what: string; topic: string; payload: string; retain?: boolean; allowedFor?: Attacker[] };

/** Every attack of issue 10, with the valid payload an attacker would send. */
const ATTACKS: Attack[] = [
  { what: 'a retained head with an old SHA (downgrade)', topic: headTopic('acme/web', 'refs/heads/main'), payload: head(OLD, 'refs/heads/main'), retain: true },
  { what: 'a head on an extra topic dated year 9999', topic: headTopic('acme/web', 'refs/heads/extra'), payload: head(NEW, 'refs/heads/extra', '9999-01-01T00:00:00.000Z'), retain: true },
  { what: 'a pin directive', topic: agentPinTopic('web-1', 'web'), payload: directive('pin'), retain: true },
  { what: 'a rollback directive', topic: agentRollbackTopic('web-1'), payload: directive('rollback') },
  { what: 'a freeze by rollout control', topic: ROLLOUT_CONTROL, payload: control({ op: 'freeze', env: 'production' }), allowedFor: ['operator'] },
  { what: 'a pin by rollout control', topic: ROLLOUT_CONTROL, payload: control({ op: 'pin', agent: 'web-1', app: 'web', sha: OLD }), allowedFor: ['operator'] },
  { what: 'concurrency/set 10 on a rollout channel', topic: `coordinosaur/${ROLLOUT}/concurrency/set`, payload: '10' },
  { what: 'concurrency/set 1000 on a plain channel', topic: 'coordinosaur/ci/concurrency/set', payload: '1000', allowedFor: ['operator'] },
  { what: "finished of someone else's job", topic: 'coordinosaur/ci/finished', payload: 'job-1', allowedFor: ['operator'] },
  { what: "finished of another agent's rollout job", topic: `/coordinosaur/${ROLLOUT}/finished`, payload: 'web-1' },
  { what: 'a seed orchestrator COMMAND', topic: seedCommandTopic(SEED_DEFAULT_ROOT, 'web-1'), payload: 'RUN reboot', allowedFor: ['operator'] },
  { what: 'an orchestrator node command', topic: nodeCommandTopic('web-1'), payload: JSON.stringify({ v: SCHEMA_VERSION }) },
  { what: 'a fake agent ghost-1', topic: agentStatusTopic('ghost-1'), payload: JSON.stringify({ v: SCHEMA_VERSION, agent: 'ghost-1', state: 'online', labels: {}, version: '0', startedAt: now(), at: now() }), retain: true },
];

describe('attacks on the embedded broker with auth on (issue 10)', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  const urls = {} as Record<Attacker, string>;
  let operatorUrl: string;
  let observe: () => Promise<Record<string, unknown>>;
  let before: Record<string, unknown>;

  beforeAll(async () => {
    hub = await startTestHub(cleanup, 'aedes');
    // A genuine push first, so there is a head that must not move.
    const push = await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: NEW })));
    expect(push.status).toBe(200);
    urls.anonymous = withoutCredentials(hub.mqttUrl);
    urls.agent = await userUrl(hub.mqttUrl, 'web-2', 'agent');
    urls.client = await userUrl(hub.mqttUrl, 'ci-mallory', 'client');
    urls.operator = await userUrl(hub.mqttUrl, 'ops-stolen', 'operator');
    operatorUrl = await userUrl(hub.mqttUrl, 'ops', 'operator');
    const ownerUrl = await userUrl(hub.mqttUrl, 'ci-owner', 'client');
    const web1Url = await userUrl(hub.mqttUrl, 'web-1', 'agent');
    // The users file is polled: wait until the last account added is let in.
    await waitFor('accounts loaded', async () => (await attempt(web1Url, { topic: agentStatusTopic('web-1'), payload: JSON.stringify({ v: SCHEMA_VERSION, agent: 'web-1', state: 'online', labels: {}, version: '0', startedAt: now(), at: now() }), retain: true })) === 'accepted');

    // Victims: a client holding job-1 on channel ci, and agent web-1 registered in a rollout channel.
    const owner = await mqtt.connectAsync(ownerUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => owner.endAsync(true));
    const granted = new Promise<void>((resolve) => owner.on('message', (t) => t === 'coordinosaur/ci/go/job-1' && resolve()));
    await owner.subscribeAsync('coordinosaur/ci/+/job-1', { qos: 1 });
    await owner.publishAsync('coordinosaur/ci/register', JSON.stringify({ uid: 'job-1', timeout: 600 }), { qos: 1 });
    await granted;
    const web1 = await mqtt.connectAsync(web1Url, { reconnectPeriod: 0 });
    cleanup.defer(() => web1.endAsync(true));
    await web1.publishAsync(`coordinosaur/${ROLLOUT}/register`, JSON.stringify({ uid: 'web-1', timeout: 600 }), { qos: 1 });

    const sem = await coordinosaurClient(cleanup, hub.mqttUrl);
    const settings = await watch(cleanup, hub.mqttUrl, ROLLOUT_SETTINGS);
    const retainedHeads = await watch(cleanup, hub.mqttUrl, 'pushfleet/heads/#');
    observe = async () => {
      const heads = storedHeads(hub.stateDir);
      const status = await runCli(['status', '--mqtt-url', operatorUrl]);
      expect(status.code, status.stderr).toBe(0);
      return {
        heads,
        retainedHeads: retainedHeads.messages.map((m) => [m.topic, m.payload.length > 0 && (JSON.parse(m.payload) as PushMessage).after]),
        status: status.stdout,
        ci: await sem.infos('ci'),
        rollout: await sem.infos(ROLLOUT),
        settings: settings.messages.map((m) => m.payload),
      };
    };
    before = await observe();
    expect(before.heads).toEqual([[headTopic('acme/web', 'refs/heads/main'), NEW]]);
    expect((before.ci as { working: { uid: string }[] }).working.map((j) => j.uid)).toEqual(['job-1']);
  });
  afterAll(() => cleanup.run());

  it('tells an accepted publish from a refused one (an operator may list rollouts)', async () => {
    expect(await attempt(operatorUrl, { topic: ROLLOUT_CONTROL, payload: control({ op: 'list' }) })).toBe('accepted');
  });

  it('refuses a malformed payload at the door, on a topic the client may publish', async () => {
    const refusedBefore = hub.brokerRefusals()!.publishes;
    expect(await attempt(urls.agent, { topic: agentStatusTopic('web-2'), payload: '{"v":1}', retain: true })).toBe('connection closed');
    expect(hub.brokerRefusals()!.publishes).toBe(refusedBefore + 1);
  });

  it('refuses a will on a topic the client may not publish, before it can be left behind', async () => {
    for (const who of ['agent', 'client', 'operator'] as const) {
      const will = { topic: headTopic('acme/web', 'refs/heads/main'), payload: Buffer.from(head(OLD, 'refs/heads/main')), qos: 1 as const, retain: true };
      const refused = await mqtt.connectAsync(urls[who], { reconnectPeriod: 0, connectTimeout: 5000, will }).then(
        (c) => (c.end(true), 0),
        (err: { code?: number }) => err.code,
      );
      expect(refused, who).toBe(5);
    }
    expect(hub.brokerRefusals()!.wills).toBe(3);
  });

  it.each<[Attacker, Outcome]>([
    ['anonymous', 'refused at login'],
    ['agent', 'connection closed'],
    ['client', 'connection closed'],
    ['operator', 'connection closed'],
  ])('refuses every attack as %s, and nothing moves', async (who, expected) => {
    const counter = expected === 'refused at login' ? 'logins' : 'publishes';
    const counted = hub.brokerRefusals()![counter];
    const outcomes: Record<string, Outcome> = {};
    for (const a of ATTACKS) if (!a.allowedFor?.includes(who)) outcomes[a.what] = await attempt(urls[who], a);
    outcomes['a flood of 5,000 retained heads'] = await flood(urls[who], 5000, (i) => ({ topic: headTopic('acme/web', `refs/heads/flood-${i}`), payload: head(NEW, `refs/heads/flood-${i}`) }));
    expect(outcomes).toEqual(Object.fromEntries(Object.keys(outcomes).map((k) => [k, expected])));
    // Each refusal counted (a flood cut off mid-chunk may count a few).
    expect(hub.brokerRefusals()![counter] - counted).toBeGreaterThanOrEqual(Object.keys(outcomes).length);
    expect(await observe()).toEqual(before);
    expect(before.status).not.toContain('ghost-1');
  });
});

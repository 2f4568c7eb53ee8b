import { join } from 'node:path';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { decode, SCHEMA_VERSION } from '../../src/shared/messages.js';
import { RolloutSnapshot } from '../../src/shared/contract/rollout-messages.js';
import { RunEvent } from '../../src/shared/contract/orchestrator-messages.js';
import { agentStatusTopic, appStateTopic, nodeInfoTopic, ROLLOUT_STATE_ALL, runEventsTopic, runRequestTopic, semaphoreTopic } from '../../src/shared/topics.js';
import { Cleanup } from '../support/cleanup.js';
import { fakeAppState, fakeNodeInfo, fakeStatus } from '../support/fake-agents.js';
import { startMosquitto } from '../support/mosquitto.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { SECRET, startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const FLOOD = 20_000;
const BOUND = 20;

/**
 * Sends `messages` in batches, each followed by a semaphore `infos` whose reply says the hub has
 * handled everything before it: mosquitto drops what queues up past 1000 messages for a slow
 * subscriber, and the flood must reach the hub to test its bounds.
 */
async function flood(client: MqttClient, messages: Iterable<[string, Buffer | string]>, retain: boolean, batch = 400): Promise<number> {
  let sent = 0;
  let round = 0;
  const barrier = async () => {
    const reply = semaphoreTopic('coordinosaur', `barrier-${round}`, 'infos/reply');
    await client.subscribeAsync(reply, { qos: 1 });
    const answered = new Promise<void>((resolve) => {
      const on = (topic: string) => topic === reply && (client.off('message', on), resolve());
      client.on('message', on);
    });
    await client.publishAsync(semaphoreTopic('coordinosaur', `barrier-${round++}`, 'infos'), '', { qos: 1 });
    await answered;
    await client.unsubscribeAsync(reply);
  };
  for (const [topic, payload] of messages) {
    client.publish(topic, payload, { qos: 0, retain });
    if (++sent % batch === 0) await barrier();
  }
  await barrier();
  return sent;
}

describe('tables the hub fills from MQTT stay bounded under a flood', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it(`${FLOOD} fake agents on a broker without ACLs: rollouts and orchestrator follow ${BOUND}, the genuine one first`, async () => {
    // An external broker set up without logins or ACLs: anyone may publish any agent's topics.
    const broker = await startMosquitto();
    cleanup.defer(() => broker.stop());
    const hub = await startTestHub(cleanup, 'aedes', {
      mqtt: { url: broker.url },
      engines: { rollouts: { maxAgents: BOUND, defaults: { batchSize: 1, canary: 0 } }, orchestrator: { maxAgents: BOUND } },
    });
    const rollouts = await watch(cleanup, broker.url, ROLLOUT_STATE_ALL);
    const runEvents = await watch(cleanup, broker.url, runEventsTopic('flood-run'));
    const attacker = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    cleanup.defer(() => attacker.endAsync(true));
    const agent = (id: string): [string, Buffer][] => [
      [agentStatusTopic(id), fakeStatus(id, { env: 'production', role: 'flood' })],
      [appStateTopic(id, 'web'), fakeAppState(id, 'web')],
      [nodeInfoTopic(id), fakeNodeInfo(id)],
    ];
    // Retained, as agents publish them: the hub reads them back after a restart too.
    await flood(attacker, agent('genuine-1'), true);
    const fakes = function* () {
      for (let i = 0; i < FLOOD; i++) yield* agent(`ghost-${i}`);
    };
    expect(await flood(attacker, fakes(), true)).toBe(FLOOD * 3);

    // A push is planned over the agents followed: the genuine one and the first fakes, no more.
    const sha = 'b'.repeat(40);
    expect((await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: sha })))).status).toBe(200);
    const planned = await waitFor('the rollout planned', () => {
      const m = rollouts.messages.find((x) => x.payload);
      const d = m && decode(RolloutSnapshot, m.payload);
      return d?.ok ? d.value : undefined;
    });
    expect(planned.hosts).toHaveLength(BOUND);
    expect(planned.hosts.map((h) => h.agent)).toContain('genuine-1');

    // A playbook over every node labelled role=flood reaches the same few.
    const playbook = 'steps:\n  - id: all\n    targets: {role: flood}\n    action: SLEEP\n    args: [1]\n';
    await attacker.publishAsync(runRequestTopic('flood-run'), JSON.stringify({ v: SCHEMA_VERSION, runId: 'flood-run', file: 'flood.yaml', playbook, requestedAt: new Date().toISOString() }), { qos: 1 });
    const step = await waitFor('the step started', () =>
      runEvents.messages.map((m) => decode(RunEvent, m.payload)).find((d) => d.ok && d.value.type === 'step' && d.value.status === 'running'),
    );
    const nodes = step.ok && step.value.type === 'step' ? step.value.nodes : [];
    expect(nodes).toHaveLength(BOUND);
    expect(nodes).toContain('genuine-1');
  }, 120_000);

  it(`${FLOOD} channels from one semaphore client over mosquitto with the ACL: ${BOUND} held, the genuine channel still served`, async () => {
    const hub = await startTestHub(cleanup, 'mosquitto', { engines: { semaphore: { maxChannels: BOUND } } });
    const client = await mqtt.connectAsync((await hub.broker!.user('ci-runner', 'client')).url, { reconnectPeriod: 0 });
    cleanup.defer(() => client.endAsync(true));
    const seen: { topic: string; payload: string }[] = [];
    client.on('message', (topic, payload) => seen.push({ topic, payload: payload.toString() }));
    await client.subscribeAsync(['coordinosaur/genuine/go/+', 'coordinosaur/+/error'], { qos: 1 });
    const register = (channel: string, uid: string): [string, string] => [semaphoreTopic('coordinosaur', channel, 'register'), JSON.stringify({ uid, timeout: 600 })];
    await flood(client, [register('genuine', 'job-1')], false);
    await waitFor('job-1 granted', () => seen.some((m) => m.topic === 'coordinosaur/genuine/go/job-1' && m.payload === 'job-1'));
    const channels = function* () {
      for (let i = 0; i < FLOOD; i++) yield register(`flood-${i}`, 'x');
    };
    await flood(client, channels(), false);

    const db = new Database(join(hub.stateDir, 'hub.sqlite'), { readonly: true });
    cleanup.defer(() => db.close());
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    expect(count('SELECT count(DISTINCT channel) AS n FROM semaphore_jobs')).toBe(BOUND);
    expect(count('SELECT count(*) AS n FROM semaphore_jobs')).toBe(BOUND);
    // Each refused register was answered; the genuine channel and the first fakes hold the places.
    expect(seen.filter((m) => m.topic.endsWith('/error') && JSON.parse(m.payload).code === 'table-full')).toHaveLength(FLOOD - (BOUND - 1));

    // The channel held before the flood still queues and grants.
    await flood(client, [register('genuine', 'job-2'), [semaphoreTopic('coordinosaur', 'genuine', 'finished'), 'job-1']], false);
    await waitFor('job-2 granted after job-1 finished', () => seen.some((m) => m.topic === 'coordinosaur/genuine/go/job-2' && m.payload === 'job-2'));
  }, 120_000);
});

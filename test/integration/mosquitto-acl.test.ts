import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, type AgentStatus } from '../../src/shared/messages.js';
import { type RolloutControl } from '../../src/shared/contract/rollout-messages.js';
import { agentPinTopic, agentStatusTopic, headTopic, ROLLOUT_CONTROL, rolloutReplyTopic } from '../../src/shared/topics.js';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';
import { startMosquitto, STAY } from '../support/mosquitto.js';
import { startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const SHA = 'a'.repeat(40);
const status = (agent: string): AgentStatus => ({ v: SCHEMA_VERSION, agent, state: 'online', labels: { env: 'production' }, version: 'x', startedAt: null, at: new Date().toISOString() });
const control = (requestId: string, req: Record<string, unknown>): string => JSON.stringify({ v: SCHEMA_VERSION, requestId, by: requestId, ...req } as RolloutControl);

describe('mosquitto with the generated ACL: a stolen agent password', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function loggedIn(url: string): Promise<{ client: MqttClient; got: { topic: string; payload: string }[] }> {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
    cleanup.defer(() => client.endAsync(true));
    const got: { topic: string; payload: string }[] = [];
    client.on('message', (topic, payload) => got.push({ topic, payload: payload.toString() }));
    return { client, got };
  }

  it("cannot publish another agent's status, a head or rollout control, nor read another agent's pins", async () => {
    const hub = await startTestHub(cleanup, 'mosquitto');
    const everything = await watch(cleanup, hub.mqttUrl, '#');
    const a1 = await loggedIn((await hub.broker!.user('a1', 'agent')).url);
    const a2 = await loggedIn((await hub.broker!.user('a2', 'agent')).url);
    await a1.client.subscribeAsync([agentPinTopic('a2', '+'), agentPinTopic('+', '+'), agentPinTopic('a1', '+')], { qos: 1 });
    await a2.client.subscribeAsync(agentPinTopic('a2', '+'), { qos: 1 });

    // The attacks, each acknowledged by mosquitto (MQTT 3.1.1 has no refusal code) and dropped.
    const head = headTopic('acme/web', 'refs/heads/main');
    await a1.client.publishAsync(agentStatusTopic('ghost-1'), JSON.stringify(status('ghost-1')), { qos: 1, retain: true });
    await a1.client.publishAsync(agentStatusTopic('a2'), JSON.stringify({ ...status('a2'), state: 'offline' }), { qos: 1, retain: true });
    await a1.client.publishAsync(head, JSON.stringify({ v: SCHEMA_VERSION, after: SHA }), { qos: 1, retain: true });
    await a1.client.publishAsync(ROLLOUT_CONTROL, control('by-a1', { op: 'freeze', env: 'production' }), { qos: 1 });
    // The same agent's own status goes through: what it sent before would have arrived first.
    await a1.client.publishAsync(agentStatusTopic('a1'), JSON.stringify(status('a1')), { qos: 1, retain: true });
    await waitFor('a1 status seen by the operator', () => everything.messages.some((m) => m.topic === agentStatusTopic('a1')));
    // An operator's control is answered, the agent's never was.
    const operator = await loggedIn(hub.mqttUrl);
    await operator.client.subscribeAsync('pushfleet/rollouts/replies/+', { qos: 1 });
    await operator.client.publishAsync(ROLLOUT_CONTROL, control('by-operator', { op: 'pin', agent: 'a2', app: 'web', sha: SHA }), { qos: 1 });
    await waitFor('the operator answered', () => operator.got.some((m) => m.topic === rolloutReplyTopic('by-operator')));
    // The pin reaches a2, and a1 only once it is a1's own.
    await waitFor('a2 got its pin', () => a2.got.some((m) => m.topic === agentPinTopic('a2', 'web')));
    await operator.client.publishAsync(ROLLOUT_CONTROL, control('pin-a1', { op: 'pin', agent: 'a1', app: 'web', sha: SHA }), { qos: 1 });
    await waitFor('a1 got its own pin', () => a1.got.some((m) => m.topic === agentPinTopic('a1', 'web')));

    const seen = everything.messages.map((m) => m.topic);
    expect(seen).not.toContain(agentStatusTopic('ghost-1'));
    expect(everything.messages.filter((m) => m.topic === agentStatusTopic('a2'))).toEqual([]);
    expect(seen).not.toContain(head);
    expect(everything.messages.filter((m) => m.topic === ROLLOUT_CONTROL).map((m) => JSON.parse(m.payload).requestId)).toEqual(['by-operator', 'pin-a1']);
    expect(operator.got.map((m) => m.topic)).not.toContain(rolloutReplyTopic('by-a1'));
    expect(a1.got.map((m) => m.topic)).toEqual([agentPinTopic('a1', 'web')]);
  });
});

describe('the shipped config/mosquitto/pushfleet.conf', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('refuses anonymous clients and holds each user of the example acl to its role', async () => {
    const shipped = (name: string) => readFileSync(new URL(`../../config/mosquitto/${name}`, import.meta.url), 'utf8');
    const broker = await startMosquitto({
      config: ({ port, dir }) => {
        // The example acl's users, with passwords as config/mosquitto/README.md makes them.
        for (const user of ['hub', 'operator', 'web-1']) execFileSync('mosquitto_passwd', [...(user === 'hub' ? ['-c'] : []), '-b', join(dir, 'passwd'), user, `${user}-secret`]);
        writeFileSync(join(dir, 'acl'), shipped('acl'));
        return `${STAY}\n${shipped('pushfleet.conf')}`
          .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
          .replace(/^password_file .*$/m, `password_file ${join(dir, 'passwd')}`)
          .replace(/^acl_file .*$/m, `acl_file ${join(dir, 'acl')}`)
          .replace(/^persistence_location .*$/m, `persistence_location ${dir}/`);
      },
    });
    cleanup.defer(() => broker.stop());
    const at = (user: string) => `mqtt://${user}:${user}-secret@127.0.0.1:${broker.port}`;
    await expect(mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })).rejects.toThrow(/Not authorized/);
    await expect(mqtt.connectAsync(`mqtt://web-1:wrong@127.0.0.1:${broker.port}`, { reconnectPeriod: 0 })).rejects.toThrow(/Not authorized|Bad username/);
    const operator = await mqtt.connectAsync(at('operator'), { reconnectPeriod: 0 });
    cleanup.defer(() => operator.endAsync(true));
    const got: string[] = [];
    operator.on('message', (topic) => got.push(topic));
    await operator.subscribeAsync('pushfleet/#', { qos: 1 });
    const web1 = await mqtt.connectAsync(at('web-1'), { reconnectPeriod: 0 });
    cleanup.defer(() => web1.endAsync(true));
    await web1.publishAsync(agentStatusTopic('web-2'), JSON.stringify(status('web-2')), { qos: 1 });
    await web1.publishAsync(agentStatusTopic('web-1'), JSON.stringify(status('web-1')), { qos: 1 });
    await waitFor('web-1 status', () => got.includes(agentStatusTopic('web-1')));
    expect(got).toEqual([agentStatusTopic('web-1')]);
  });
});

describe('reading state through an ACL without pushfleet/sync/+ (made before pushfleet had it)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('pushfleet status fails with one line naming the topic instead of waiting forever', async () => {
    const broker = await startMosquitto({
      config: ({ port, dir }) => {
        execFileSync('mosquitto_passwd', ['-c', '-b', join(dir, 'passwd'), 'operator', 'operator-secret']);
        writeFileSync(join(dir, 'acl'), 'user operator\ntopic read #\n');
        return `${STAY}\nlistener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${join(dir, 'passwd')}\nacl_file ${join(dir, 'acl')}\n`;
      },
    });
    cleanup.defer(() => broker.stop());
    const status = await runCli(['status', '--mqtt-url', `mqtt://operator:operator-secret@127.0.0.1:${broker.port}`]);
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(/^pushfleet: the broker did not deliver pushfleet\/sync\/\S+ back within 10 s: does its ACL let this client publish and read pushfleet\/sync\/\+\?\n$/);
  });
});

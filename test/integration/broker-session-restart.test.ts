/**
 * The embedded broker's persistence across hub kill -9: a persistent session's subscriptions and
 * queued messages, retained messages and wills are on disk (the broker_* tables of stateDir/hub.sqlite) and the next
 * broker on that state dir carries on with them. Plus aedes-persistence's conformance suite.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/hub/broker/embedded-broker.js';
import { createLogger } from '../../src/shared/logger.js';
import { Cleanup } from '../support/cleanup.js';
import { RestartableHub } from '../support/restartable-hub.js';
import { freePort } from '../support/ports.js';
import { runProcess } from '../support/run-process.js';
import { waitFor } from '../support/wait.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const log = createLogger('broker', 'warn');

async function connect(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...opts });
  cleanup.defer(() => client.endAsync(true));
  return client;
}

function record(client: MqttClient): { topic: string; payload: string; retain: boolean; dup: boolean }[] {
  const got: { topic: string; payload: string; retain: boolean; dup: boolean }[] = [];
  client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), retain: packet.retain, dup: packet.dup }));
  return got;
}

/** The next broker on the killed hub's state dir and port, in this process. */
async function brokerAfter(hub: RestartableHub, heartbeatIntervalMs?: number): Promise<EmbeddedBroker> {
  const broker = await startEmbeddedBroker({ host: '127.0.0.1', port: Number(new URL(hub.mqttUrl).port), state: { stateDir: hub.stateDir }, heartbeatIntervalMs }, log);
  cleanup.defer(() => broker.close());
  return broker;
}

/** Connects the way a persistent client comes back, resolving with its CONNACK's sessionPresent. */
async function reconnect(url: string, opts: IClientOptions): Promise<{ client: MqttClient; got: ReturnType<typeof record>; sessionPresent: boolean }> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, ...opts });
  cleanup.defer(() => client.endAsync(true));
  const got = record(client);
  const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  return { client, got, sessionPresent: connack.sessionPresent };
}

describe('embedded broker persistence across kill -9', () => {
  it('keeps a persistent session: its subscriptions, and the messages queued for it before and after the kill', async () => {
    const hub = await RestartableHub.create(cleanup);
    await hub.start();
    const session = { clientId: 'agent-7', clean: false };
    const first = await connect(hub.mqttUrl, session);
    await first.subscribeAsync({ 'acme/#': { qos: 1 }, 'exact/+': { qos: 2 } });
    await first.endAsync();

    const publisher = await connect(hub.mqttUrl);
    for (const n of [1, 2, 3]) await publisher.publishAsync('acme/web', `before-${n}`, { qos: 1 });
    await publisher.publishAsync('exact/one', 'qos2-before', { qos: 2 });
    await hub.kill();

    const broker = await brokerAfter(hub);
    await broker.publish('acme/api', Buffer.from('after'), { qos: 1 });
    // No SUBSCRIBE this time: the session brings its subscriptions back.
    const { got, sessionPresent } = await reconnect(hub.mqttUrl, session);
    expect(sessionPresent).toBe(true);
    await waitFor(() => `five queued messages, got ${JSON.stringify(got)}`, () => got.length >= 5);
    // In order per topic; the QoS 2 one is handed over after its PUBREL, so it may come later.
    expect(got.filter((m) => m.topic.startsWith('acme/')).map((m) => m.payload)).toEqual(['before-1', 'before-2', 'before-3', 'after']);
    expect(got.filter((m) => m.topic === 'exact/one').map((m) => m.payload)).toEqual(['qos2-before']);
    // Delivered and acknowledged: a further reconnect gets nothing again.
    await new Promise((r) => setTimeout(r, 200));
    const later = await reconnect(hub.mqttUrl, session);
    await new Promise((r) => setTimeout(r, 300));
    expect(later.got).toEqual([]);
  });

  it('keeps retained messages, and the removal of one', async () => {
    const hub = await RestartableHub.create(cleanup);
    await hub.start();
    const publisher = await connect(hub.mqttUrl);
    await publisher.publishAsync('config/a', 'kept', { qos: 1, retain: true });
    await publisher.publishAsync('config/b', 'removed later', { qos: 0, retain: true });
    await publisher.publishAsync('config/b', '', { qos: 1, retain: true });
    await hub.kill();

    await brokerAfter(hub);
    const watcher = await connect(hub.mqttUrl);
    const got = record(watcher);
    await watcher.subscribeAsync('config/#', { qos: 1 });
    await waitFor('the retained message', () => got.length >= 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual([{ topic: 'config/a', payload: 'kept', retain: true, dup: false }]);
  });

  it("publishes the will of a client the kill cut off that did not come back, but not the hub's own", async () => {
    const hub = await RestartableHub.create(cleanup);
    await hub.start();
    await connect(hub.mqttUrl, { clientId: 'agent-9', will: { topic: 'agents/agent-9', payload: Buffer.from('gone'), qos: 1, retain: true } });
    await hub.kill();

    // Wills of the previous run are swept every 4 heartbeats; 4 × 100 ms here instead of 4 minutes.
    await brokerAfter(hub, 100);
    const watcher = await connect(hub.mqttUrl);
    const got = record(watcher);
    await watcher.subscribeAsync(['agents/#', 'pushfleet/hub/status'], { qos: 1 });
    await waitFor(() => `the will, got ${JSON.stringify(got)}`, () => got.find((m) => m.topic === 'agents/agent-9'));
    await new Promise((r) => setTimeout(r, 600));
    expect(got.find((m) => m.topic === 'agents/agent-9')?.payload).toBe('gone');
    // The hub's in-process client dies with the broker; its "offline" will must not outlive it
    // and overwrite the "online" that the hub's next run publishes.
    const status = got.filter((m) => m.topic === 'pushfleet/hub/status').map((m) => JSON.parse(m.payload).state);
    expect(status).toEqual(['online']);
  });

  it("stores a client's QoS 1 message for an offline session before the PUBACK reaches the client", async () => {
    const hub = await RestartableHub.create(cleanup);
    await hub.start();
    const session = { clientId: 'offline-one', clean: false };
    const first = await connect(hub.mqttUrl, session);
    await first.subscribeAsync('jobs/#', { qos: 1 });
    await first.endAsync();
    await hub.kill();

    // A broker that SIGKILLs itself as soon as its client holds the PUBACK.
    const script = fileURLToPath(new URL('../../dist/test/support/publish-then-die.js', import.meta.url));
    const died = await runProcess(process.execPath, [script, hub.stateDir, new URL(hub.mqttUrl).port, 'jobs/1']);
    expect(died.signal, died.stderr).toBe('SIGKILL');

    await brokerAfter(hub);
    const { got } = await reconnect(hub.mqttUrl, session);
    await waitFor(() => `the acknowledged message, got ${JSON.stringify(got)}`, () => got.length >= 1);
    expect(got.map((m) => m.payload)).toEqual(['acknowledged before the kill']);
  });
});

describe('embedded broker with persistence', () => {
  it("delivers a client's publishes in order and all of its own, retained or not, in order per topic", async () => {
    const broker = await startEmbeddedBroker({ host: '127.0.0.1', port: await freePort(), state: { stateDir: cleanup.tempDir('pushfleet-broker-') } }, log);
    cleanup.defer(() => broker.close());
    const session = await connect(broker.url, { clientId: 'watcher', clean: false });
    await session.subscribeAsync('order/#', { qos: 1 });
    const live = await connect(broker.url);
    await live.subscribeAsync('order/#', { qos: 1 });
    const got = [record(session), record(live)];
    const publisher = await connect(broker.url);
    const topic = (i: number) => (i % 2 ? 'order/plain' : 'order/state');
    // Not awaited one by one: the way an agent reports its state and then gives a slot back.
    await Promise.all(Array.from({ length: 20 }, (_, i) => publisher.publishAsync(topic(i), `client-${i}`, { qos: 1, retain: i % 2 === 0 })));
    // The hub's own publishes at once, retained and not, as an engine answering several clients.
    await Promise.all(Array.from({ length: 20 }, (_, i) => broker.publish(topic(i), Buffer.from(`hub-${i}`), { qos: 1, retain: i % 2 === 0 })));
    const client = Array.from({ length: 20 }, (_, i) => `client-${i}`);
    const hub = (t: string) => Array.from({ length: 20 }, (_, i) => i).filter((i) => topic(i) === t).map((i) => `hub-${i}`);
    await waitFor(() => `40 messages at both subscribers: ${got.map((g) => g.map((m) => m.payload).join(' ')).join(' | ')}`, () => got.every((g) => g.length >= 40));
    for (const g of got) {
      expect(g.filter((m) => m.payload.startsWith('client-')).map((m) => m.payload)).toEqual(client);
      for (const t of ['order/state', 'order/plain']) expect(g.filter((m) => m.topic === t && m.payload.startsWith('hub-')).map((m) => m.payload)).toEqual(hub(t));
    }
  });
});

describe('embedded broker on a full disk', () => {
  it('fails a publish it cannot store, and delivers and keeps none of it; carries on once there is room', async () => {
    const stateDir = cleanup.tempDir('pushfleet-full-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', stateDir]);
    cleanup.defer(() => execFileSync('umount', ['-l', stateDir]));
    const broker = await startEmbeddedBroker({ host: '127.0.0.1', port: await freePort(), state: { stateDir } }, log);
    cleanup.defer(() => broker.close());
    const offline = await connect(broker.url, { clientId: 'offline-agent', clean: false });
    await offline.subscribeAsync('full/#', { qos: 1 });
    await offline.endAsync();
    const live = await connect(broker.url);
    const seen = record(live);
    await live.subscribeAsync('full/#', { qos: 1 });

    const filler = join(stateDir, 'filler');
    const fill = () => {
      try {
        for (;;) appendFileSync(filler, Buffer.alloc(16 * 1024));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    };
    fill();
    await expect(broker.publish('full/retained', Buffer.from('lost'), { qos: 1, retain: true })).rejects.toThrow(/full/);
    await expect(broker.publish('full/queued', Buffer.from('lost'), { qos: 1 })).rejects.toThrow(/full/);

    rmSync(filler);
    await broker.publish('full/queued', Buffer.from('kept'), { qos: 1 });
    await waitFor('the publish after the disk had room again', () => seen.length >= 1);
    const late = await connect(broker.url);
    const retained = record(late);
    await late.subscribeAsync('full/#', { qos: 1 });
    const back = await reconnect(broker.url, { clientId: 'offline-agent', clean: false });
    await waitFor('the queued message', () => back.got.length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(seen.map((m) => m.payload)).toEqual(['kept']);
    expect(retained).toEqual([]);
    expect(back.got.map((m) => m.payload)).toEqual(['kept']);
  });
});

describe('aedes-persistence conformance', () => {
  it('passes the abstract test suite of aedes-persistence', async () => {
    const suite = fileURLToPath(new URL('../../dist/test/support/persistence-conformance.js', import.meta.url));
    const res = await runProcess(process.execPath, ['--test', '--test-reporter=tap', suite]);
    const tally = /# pass (\d+)[\s\S]*# fail (\d+)/.exec(res.stdout);
    expect(res.code, res.stdout.split('\n').filter((l) => /^not ok|error:/.test(l.trim())).join('\n')).toBe(0);
    expect(Number(tally?.[2])).toBe(0);
    expect(Number(tally?.[1])).toBeGreaterThanOrEqual(50);
  });
});

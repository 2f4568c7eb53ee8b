import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { MqttClient } from 'mqtt';
import type { Logger } from '../shared/logger.js';
import { SCHEMA_VERSION, type HubStatus } from '../shared/messages.js';
import { connectMqtt } from '../shared/mqtt-connection.js';
import { HUB_STATUS } from '../shared/topics.js';
import { VERSION } from '../shared/version.js';
import type { HubConfig } from './config.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './broker/embedded-broker.js';
import { Dispatcher } from './engines/dispatcher.js';
import { systemClock, type Publisher } from './engines/engine.js';
import { createEngines } from './engines/registry.js';
import { createHttpServer } from './http-server.js';
import { HeadStore } from './engines/heads/head-store.js';
import { publishPush, type OwnHeads } from './push-publisher.js';
import { openStateDb } from './state-db.js';
import { TickBatch } from './tick-batch.js';
import { DeliveryLog } from './webhook/deliveries.js';
import { resolveWebhookSecret } from './webhook/secret.js';

export type RunningHub = {
  httpPort: number;
  mqttUrl: string;
  mqtt: MqttClient;
  stop(): Promise<void>;
};

/** Starts broker (unless external), MQTT client, state and HTTP, in that order; `stop` undoes all. */
export async function startHub(config: HubConfig, log: Logger): Promise<RunningHub> {
  const secret = resolveWebhookSecret(config.webhook.secret, config.stateDir);
  if (secret.source === 'generated') {
    // Printed once, on the terminal as well as in the log, because the user must copy it.
    process.stderr.write(
      `\npushfleet: generated a webhook secret (kept in ${secret.file}, mode 0600):\n\n    ${secret.secret}\n\n` +
        `Paste it in GitHub: repository → Settings → Webhooks → Add webhook → "Secret",\n` +
        `with Payload URL http://<this-host>:${config.http.port}${config.webhook.path} and content type application/json.\n\n`,
    );
  }
  log.info({ source: secret.source, file: secret.file }, 'webhook secret loaded');

  const broker: EmbeddedBroker | undefined = config.mqtt
    ? undefined
    : await startEmbeddedBroker({ host: config.broker.host, port: config.broker.port, stateDir: config.broker.persistence === 'sqlite' ? config.stateDir : undefined }, log);
  const mqttConfig = config.mqtt ?? { url: broker!.url, keepalive: 30 };
  const db = openStateDb(config.stateDir);
  const batch = new TickBatch(db);
  const deliveries = new DeliveryLog(db, batch);
  const heads = new HeadStore(db, batch);
  deliveries.pruneOld();
  const pruneTimer = setInterval(() => deliveries.pruneOld(), 86_400_000).unref();

  log.info({ url: mqttConfig.url }, 'connecting to MQTT broker');
  const startedAt = new Date().toISOString();
  const hubStatus = (state: HubStatus['state']) => JSON.stringify({ v: SCHEMA_VERSION, state, version: VERSION, startedAt, at: new Date().toISOString() } satisfies HubStatus);
  const mqtt = await connectMqtt(mqttConfig, {
    will: { topic: HUB_STATUS, payload: hubStatus('offline'), retain: true, qos: 1 },
    onRetry: (err) => log.warn({ err: err.message }, 'MQTT broker unreachable; retrying'),
    stream: broker && (() => broker.connectInProcess()),
  });
  // Clients following the hub's work (`play`) learn that it went away, from here or the will.
  const announce = () => mqtt.publishAsync(HUB_STATUS, hubStatus('online'), { qos: 1, retain: true }).catch((err: Error) => log.warn({ err: err.message }, 'hub status not published'));
  mqtt.on('connect', () => void announce());
  await announce();
  mqtt.on('offline', () => log.warn({ url: mqttConfig.url }, 'MQTT broker unreachable; retrying'));
  mqtt.on('error', (err) => log.warn({ err: err.message }, 'MQTT error'));
  log.info({ url: mqttConfig.url, embedded: Boolean(broker) }, 'connected to MQTT broker');
  mqtt.on('connect', () => log.info({ url: mqttConfig.url }, 'reconnected to MQTT broker'));

  // With the embedded broker the hub publishes as the broker itself: no packet to encode and parse.
  const publish = (topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain?: boolean }): Promise<unknown> =>
    broker ? broker.publish(topic, typeof payload === 'string' ? Buffer.from(payload) : payload, opts) : mqtt.publishAsync(topic, payload, opts);
  const publisher: Publisher = {
    publish: async (topic, payload, opts) => {
      await publish(topic, payload, opts);
    },
  };
  const dispatcher = new Dispatcher(mqtt, createEngines(config, { publisher, db, clock: systemClock, log }, heads, broker !== undefined && !broker.restoredState), log);
  await dispatcher.start();

  // The head is queued in the same batch as the delivery record, which commits before the 200.
  const ownHeads: OwnHeads = {
    expect: (topic, payload) => heads.expectOwn(topic, payload),
    acknowledged: (topic, payload) => void heads.put(topic, payload).catch((err: unknown) => log.error({ topic, err }, 'could not store retained head')),
  };

  const server: Server = createHttpServer({
    webhookPath: config.webhook.path,
    secret: secret.secret,
    maxBodyBytes: config.webhook.maxBodyBytes,
    maxInFlight: config.webhook.maxInFlight,
    deliveries,
    publish: (push) => publishPush(publish, push, config.webhook.publishTimeoutMs, ownHeads),
    isConnected: () => mqtt.connected,
    isReady: () => mqtt.connected,
    log,
  });
  server.listen(config.http.port, config.http.host);
  await once(server, 'listening');
  const httpPort = (server.address() as AddressInfo).port;
  log.info({ host: config.http.host, port: httpPort, path: config.webhook.path }, 'webhook listening');

  let stopped: Promise<void> | undefined;
  const stop = async () => {
    clearInterval(pruneTimer);
    // Stop taking pushes first, let in-flight ones finish publishing, then drop the broker.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await dispatcher.stop();
    if (mqtt.connected) await mqtt.publishAsync(HUB_STATUS, hubStatus('offline'), { qos: 1, retain: true }).catch(() => undefined);
    // Not connected (the broker is gone, or a reconnect is under way): nothing left to flush.
    await mqtt.endAsync(!mqtt.connected);
    await broker?.close();
    batch.flush();
    db.close();
    log.info('hub stopped');
  };
  return { httpPort, mqttUrl: mqttConfig.url, mqtt, stop: () => (stopped ??= stop()) };
}

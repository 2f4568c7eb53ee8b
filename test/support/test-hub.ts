import mqtt, { type MqttClient } from 'mqtt';
import { HubConfig } from '../../src/hub/config.js';
import { startHub, type RunningHub } from '../../src/hub/hub.js';
import { createLogger } from '../../src/shared/logger.js';
import type { Cleanup } from './cleanup.js';
import { ensureOperator } from '../../src/hub/users/operator-credential.js';
import { defaultUsersFile } from '../../src/hub/users/users-file.js';
import { harnessUrl } from './broker-users.js';
import { startMosquitto, type ExternalBroker } from './mosquitto.js';
import { freePort } from './ports.js';

export type BrokerKind = 'aedes' | 'mosquitto';
export const BROKERS: BrokerKind[] = ['aedes', 'mosquitto'];
export const SECRET = 'test-webhook-secret-0123456789';

export type TestHub = RunningHub & {
  webhookUrl: string;
  stateDir: string;
  broker?: ExternalBroker;
  /** The embedded broker's users file (`harness`, role hub, is in it; `mqttUrl` logs in as it). */
  usersFile?: string;
};

/** A hub in this process: on its embedded aedes, or on a real mosquitto process. */
export async function startTestHub(cleanup: Cleanup, kind: BrokerKind, overrides: Record<string, unknown> = {}): Promise<TestHub> {
  const freshDir = cleanup.tempDir('pushfleet-hub-');
  let mqttSection: Record<string, unknown> | undefined;
  let broker: ExternalBroker | undefined;
  if (kind === 'mosquitto') {
    broker = await startMosquitto();
    cleanup.defer(() => broker!.stop());
    mqttSection = { url: broker.url };
  }
  const config = HubConfig.parse({
    http: { host: '127.0.0.1', port: 0 },
    broker: { port: await freePort() },
    webhook: { secret: SECRET },
    stateDir: freshDir,
    log: { level: 'warn' },
    ...(mqttSection && { mqtt: mqttSection }),
    ...overrides,
  });
  // Before the start: the hub finds its users file with `harness` and `operator` in it (so it
  // prints no generated credential on the test run's terminal).
  const usersFile = config.mqtt ? undefined : (config.broker.usersFile ?? defaultUsersFile(config.stateDir));
  const mqttUrl = usersFile ? await harnessUrl(config.stateDir, `mqtt://127.0.0.1:${config.broker.port}`, usersFile) : undefined;
  if (usersFile) await ensureOperator(usersFile, config.stateDir);
  const hub = await startHub(config, createLogger('hub', config.log.level));
  cleanup.defer(() => hub.stop());
  return { ...hub, ...(mqttUrl && { mqttUrl }), webhookUrl: `http://127.0.0.1:${hub.httpPort}/webhook`, stateDir: config.stateDir, broker, usersFile };
}

/** A plain MQTT client that records every message on `filter`, for asserting what was published. */
export async function watch(cleanup: Cleanup, url: string, filter: string): Promise<{ client: MqttClient; messages: { topic: string; payload: string; retain: boolean }[] }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  cleanup.defer(() => client.endAsync(true));
  const messages: { topic: string; payload: string; retain: boolean }[] = [];
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload: payload.toString(), retain: packet.retain }));
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, messages };
}

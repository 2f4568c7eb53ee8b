import mqtt, { type MqttClient } from 'mqtt';
import { HubConfig } from '../../src/hub/config.js';
import { startHub, type RunningHub } from '../../src/hub/hub.js';
import type { Role } from '../../src/shared/contract/roles.js';
import { createLogger } from '../../src/shared/logger.js';
import type { Cleanup } from './cleanup.js';
import { ensureOperator } from '../../src/hub/users/operator-credential.js';
import { defaultUsersFile } from '../../src/hub/users/users-file.js';
import { harnessUrl } from './broker-users.js';
import { authBrokerAt, startMosquitto, type ExternalBroker } from './mosquitto.js';
import { freePort } from './ports.js';
import { makeHubKeys, registerHubKey } from './signer.js';
import { existsSync } from 'node:fs';
import { PRIVATE_KEY_FILE, publicKeyFileFor } from '../../src/shared/signing/keys.js';
import { join } from 'node:path';

export type BrokerKind = 'aedes' | 'mosquitto';
export const BROKERS: BrokerKind[] = ['aedes', 'mosquitto'];
export const SECRET = 'test-webhook-secret-0123456789';

/** `mqttUrl`: where tests connect, with credentials in it: on mosquitto the operator, on the embedded broker `harness` (role hub). */
export type TestHub = RunningHub & {
  webhookUrl: string;
  stateDir: string;
  broker?: ExternalBroker;
  /** The embedded broker's users file (`harness`, role hub, is in it; `mqttUrl` logs in as it). */
  usersFile?: string;
};

/**
 * A hub in this process: on its embedded aedes, or on a real mosquitto process with logins and
 * the ACL generated from the topic table (the hub logs in as `hub`). An `mqtt.url` override
 * naming such a mosquitto logs in as `hub` too.
 */
export async function startTestHub(cleanup: Cleanup, kind: BrokerKind, overrides: Record<string, unknown> = {}): Promise<TestHub> {
  const freshDir = cleanup.tempDir('pushfleet-hub-');
  let mqttSection: Record<string, unknown> | undefined;
  let broker: ExternalBroker | undefined;
  if (kind === 'mosquitto') {
    broker = await startMosquitto({ auth: true });
    cleanup.defer(() => broker!.stop());
    mqttSection = await loginAs(broker, 'hub', 'hub');
  }
  const given = (overrides.mqtt as { url?: string } | undefined)?.url;
  const external = given === undefined ? undefined : authBrokerAt(given);
  if (external) overrides = { ...overrides, mqtt: { ...(overrides.mqtt as object), ...(await loginAs(external, 'hub', 'hub')) } };
  const config = HubConfig.parse({
    http: { host: '127.0.0.1', port: 0 },
    broker: { port: await freePort() },
    webhook: { secret: SECRET },
    stateDir: freshDir,
    log: { level: 'warn' },
    ...(mqttSection && { mqtt: mqttSection }),
    ...overrides,
  });
  // Made here rather than by the hub's first start, which would announce it on the test run's stderr.
  const keyFile = config.signing.key ?? join(config.stateDir, PRIVATE_KEY_FILE);
  if (config.signing.key === undefined && !existsSync(keyFile)) makeHubKeys(config.stateDir);
  // Before the start: the hub finds its users file with `harness` and `operator` in it (so it
  // prints no generated credential on the test run's terminal).
  const usersFile = config.mqtt ? undefined : (config.broker.usersFile ?? defaultUsersFile(config.stateDir));
  const harness = usersFile ? await harnessUrl(config.stateDir, `mqtt://127.0.0.1:${config.broker.port}`, usersFile) : undefined;
  if (usersFile) await ensureOperator(usersFile, config.stateDir);
  const hub = await startHub(config, createLogger('hub', config.log.level));
  cleanup.defer(() => hub.stop());
  // Agents on this broker trust this hub (agent-process.ts).
  registerHubKey(hub.mqttUrl, publicKeyFileFor(keyFile));
  const auth = broker ?? external;
  const mqttUrl = auth ? (await auth.user('operator', 'operator')).url : (harness ?? hub.mqttUrl);
  return { ...hub, mqttUrl, webhookUrl: `http://127.0.0.1:${hub.httpPort}/webhook`, stateDir: config.stateDir, broker, usersFile };
}

/** The `mqtt:` config section of user `name` on a test broker. */
export async function loginAs(broker: ExternalBroker, name: string, role: Role): Promise<{ url: string; username?: string; password?: string }> {
  const user = await broker.user(name, role);
  return broker.auth ? { url: broker.url, username: user.username, password: user.password } : { url: broker.url };
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

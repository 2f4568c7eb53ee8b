import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cleanup } from './cleanup.js';
import { harnessUrl } from './broker-users.js';
import { CliProcess } from './cli-process.js';
import { startMosquitto, type ExternalBroker } from './mosquitto.js';
import { freePort } from './ports.js';
import { SECRET, type BrokerKind } from './test-hub.js';
import { makeHubKeys, registerHubKey } from './signer.js';

export type HubProcesses = {
  broker?: ExternalBroker;
  /** The hub's config file and state directory. */
  config: string;
  stateDir: string;
  mqttUrl: string;
  webhookUrl: string;
  /** Starts a real `pushfleet hub` on the same config and state dir; resolves once it listens. */
  start(): Promise<CliProcess>;
};

/** Real hub processes on one config and state dir, so a test can kill -9 one and start the next. */
/** `extra`: more top-level sections of the hub config (`engines: …`). */
export async function hubProcesses(cleanup: Cleanup, kind: BrokerKind, webhook: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<HubProcesses> {
  const stateDir = cleanup.tempDir('pushfleet-hub-process-');
  let broker: ExternalBroker | undefined;
  if (kind === 'mosquitto') {
    broker = await startMosquitto();
    cleanup.defer(() => broker!.stop());
  }
  const [httpPort, brokerPort] = [await freePort(), await freePort()];
  const config = join(stateDir, 'hub.yaml');
  const mqttUrl = broker?.url ?? `mqtt://127.0.0.1:${brokerPort}`;
  // Made before the first start, so an agent may start before the hub; the hub finds them in its state dir.
  registerHubKey(mqttUrl, makeHubKeys(stateDir).pubFile);
  writeFileSync(
    config,
    JSON.stringify({
      http: { host: '127.0.0.1', port: httpPort },
      broker: { host: '127.0.0.1', port: brokerPort },
      ...(broker && { mqtt: { url: broker.url } }),
      webhook: { secret: SECRET, ...webhook },
      stateDir,
      ...extra,
    }),
  );
  return {
    broker,
    config,
    stateDir,
    mqttUrl: broker ? mqttUrl : await harnessUrl(stateDir, mqttUrl),
    webhookUrl: `http://127.0.0.1:${httpPort}/webhook`,
    async start() {
      const hub = new CliProcess(['hub', '--config', config]);
      cleanup.defer(() => hub.stop('SIGKILL'));
      await hub.waitForLog('webhook listening', (l) => l.msg === 'webhook listening');
      return hub;
    },
  };
}

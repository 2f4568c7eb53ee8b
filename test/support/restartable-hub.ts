import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { harnessUrl } from './broker-users.js';
import { CliProcess } from './cli-process.js';
import type { Cleanup } from './cleanup.js';
import { freePort } from './ports.js';
import { SECRET } from './test-hub.js';
import { makeHubKeys, registerHubKey } from './signer.js';

/**
 * A `pushfleet hub --config` process on the embedded broker that can be killed and started again
 * on the same ports and state dir, as systemd would restart it.
 */
export class RestartableHub {
  proc: CliProcess | undefined;

  private constructor(
    private readonly cleanup: Cleanup,
    readonly configFile: string,
    readonly stateDir: string,
    readonly webhookUrl: string,
    readonly mqttUrl: string,
  ) {}

  /** On its embedded broker, or on the external one at `mqttUrl`. */
  /** `broker` (merged into the embedded broker's section), `stateDir` and more top-level config sections (`config`: `engines: …`) may be given. */
  static async create(cleanup: Cleanup, mqttUrl?: string, extra: { broker?: Record<string, unknown>; stateDir?: string; config?: Record<string, unknown> } = {}): Promise<RestartableHub> {
    const stateDir = extra.stateDir ?? cleanup.tempDir('pushfleet-hub-');
    const [httpPort, brokerPort] = [await freePort(), await freePort()];
    const configFile = join(stateDir, 'hub.yaml');
    const config = {
      http: { host: '127.0.0.1', port: httpPort },
      ...(mqttUrl ? { mqtt: { url: mqttUrl } } : { broker: { host: '127.0.0.1', port: brokerPort, ...extra.broker } }),
      webhook: { secret: SECRET },
      stateDir,
      log: { level: 'info' },
      ...extra.config,
    };
    writeFileSync(configFile, JSON.stringify(config));
    const url = mqttUrl ?? (await harnessUrl(stateDir, `mqtt://127.0.0.1:${brokerPort}`));
    // Made before the first start, so an agent may start before the hub; the hub finds them in its state dir.
    registerHubKey(url, makeHubKeys(stateDir).pubFile);
    return new RestartableHub(cleanup, configFile, stateDir, `http://127.0.0.1:${httpPort}/webhook`, url);
  }

  /** Starts the hub and resolves once it takes webhooks. */
  async start(): Promise<void> {
    const proc = new CliProcess(['hub', '--config', this.configFile]);
    this.proc = proc;
    this.cleanup.defer(() => proc.stop('SIGKILL'));
    await proc.waitForLog('webhook listening', (l) => l.msg === 'webhook listening', 30_000);
  }

  async kill(): Promise<void> {
    await this.proc?.stop('SIGKILL');
    this.proc = undefined;
  }
}

import { Command, Option } from 'commander';
import { readConfigFile, setPath, validateConfig } from '../shared/config-file.js';
import { createLogger } from '../shared/logger.js';
import { HubConfig } from '../hub/config.js';
import { startHub } from '../hub/hub.js';
import { readTlsFiles } from '../hub/broker/embedded-broker.js';
import { resolveSigningKey } from '../hub/signing-key.js';
import { parsePort, runCommand, serve } from './process-lifecycle.js';

type HubFlags = { config?: string; port?: number; host?: string; brokerPort?: number; mqttUrl?: string; stateDir?: string; logLevel?: string };

/** Flags override the file; each maps to one config key so errors name the same key. */
const FLAG_KEYS: Record<Exclude<keyof HubFlags, 'config'>, string> = {
  port: 'http.port',
  host: 'http.host',
  brokerPort: 'broker.port',
  mqttUrl: 'mqtt.url',
  stateDir: 'stateDir',
  logLevel: 'log.level',
};

export function loadHubConfig(flags: HubFlags): HubConfig {
  const raw = readConfigFile(flags.config) as Record<string, unknown>;
  for (const [flag, key] of Object.entries(FLAG_KEYS)) {
    const value = flags[flag as keyof typeof FLAG_KEYS];
    if (value !== undefined) setPath(raw, key, value);
  }
  return validateConfig(HubConfig, raw, flags.config ?? '(flags)');
}

/** What the start would read besides the config: a configured signing key and the TLS files (a missing default key is made at start). */
export function checkHubFiles(config: HubConfig): void {
  if (config.signing.enabled && config.signing.key !== undefined) resolveSigningKey(config.signing, config.stateDir);
  if (!config.mqtt && config.broker.tls) readTlsFiles(config.broker.tls);
}

export function hubCommand(): Command {
  return new Command('hub')
    .description('run the hub: GitHub webhook → MQTT, with an embedded broker unless mqtt.url is set')
    .option('-c, --config <file>', 'hub YAML config (see config/hub.example.yaml)')
    .option('-p, --port <port>', 'webhook HTTP port (http.port, default 3000)', parsePort)
    .option('--host <address>', 'webhook HTTP bind address (http.host, default 0.0.0.0)')
    .option('--broker-port <port>', 'embedded MQTT broker port (broker.port, default 1883)', parsePort)
    .option('--mqtt-url <url>', 'use this broker instead of the embedded one (mqtt.url)')
    .option('--state-dir <dir>', 'where the hub keeps its secret and state (stateDir)')
    .addOption(new Option('--log-level <level>', 'log level (log.level)').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .option('--check', 'validate the config and the files it names (signing.key, broker.tls.*), then exit (0 valid, 2 invalid)')
    .action((flags: HubFlags & { check?: boolean }) =>
      runCommand(async () => {
        const config = loadHubConfig(flags);
        if (flags.check) {
          checkHubFiles(config);
          process.stdout.write(`${flags.config ?? '(flags)'}: valid (webhook on ${config.http.host}:${config.http.port}${config.webhook.path}, ${config.mqtt ? `broker ${config.mqtt.url}` : `embedded broker on ${config.broker.host}:${config.broker.port}`})\n`);
          return;
        }
        const log = createLogger('hub', config.log.level);
        await serve('hub', log, (manager) => startHub(config, log, { status: (line) => manager.status(line) }));
      }),
    );
}

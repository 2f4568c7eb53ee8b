import type { Command } from 'commander';
import { z } from 'zod';
import { readConfigFile, validateConfig } from '../shared/config-file.js';
import { MqttConnectionConfig } from '../shared/mqtt-connection.js';

export type MqttFlags = { config?: string; mqttUrl?: string };

/** Adds the broker flags every client command shares. */
export function withMqttFlags(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'take the broker settings (mqtt:) from this hub or agent config')
    .option('--mqtt-url <url>', 'broker URL (default mqtt://127.0.0.1:1883, the embedded broker)');
}

const HasMqtt = z.looseObject({ mqtt: MqttConnectionConfig.optional() });

/** The broker a client command talks to: --mqtt-url, else the config's mqtt:, else the local default. */
export function mqttFromFlags(flags: MqttFlags): MqttConnectionConfig {
  const fromFile = flags.config ? validateConfig(HasMqtt, readConfigFile(flags.config), flags.config).mqtt : undefined;
  const url = flags.mqttUrl ?? fromFile?.url ?? 'mqtt://127.0.0.1:1883';
  return validateConfig(MqttConnectionConfig, { ...fromFile, url, clientId: undefined }, flags.mqttUrl ? '--mqtt-url' : (flags.config ?? '(default)'));
}

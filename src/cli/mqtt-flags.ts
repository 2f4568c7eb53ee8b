import type { Command } from 'commander';
import { z } from 'zod';
import { readConfigFile, validateConfig } from '../shared/config-file.js';
import type { MqttClient } from 'mqtt';
import { connectMqtt, MqttConnectionConfig } from '../shared/mqtt-connection.js';
import { CommandError } from './process-lifecycle.js';

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

/** Connects a command to its broker, failing with one clear line when none answers in time. */
export async function connectFromFlags(flags: MqttFlags, timeoutSeconds: number): Promise<MqttClient> {
  const cfg = mqttFromFlags(flags);
  try {
    return await connectMqtt(cfg, { timeoutMs: timeoutSeconds * 1000 });
  } catch (err) {
    throw new CommandError(`cannot reach the broker at ${cfg.url}: ${(err as Error).message}`);
  }
}

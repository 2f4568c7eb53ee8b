import type { Command } from 'commander';
import { join } from 'node:path';
import { z } from 'zod';
import { readConfigFile, validateConfig } from '../shared/config-file.js';
import type { MqttClient } from 'mqtt';
import { defaultStateDir } from '../shared/default-state-dir.js';
import { brokerCredentials, connectMqtt, MqttConnectionConfig, refusedLogin } from '../shared/mqtt-connection.js';
import { redactUrl, splitCredentials } from '../shared/mqtt-url.js';
import { readOperatorCredentials } from '../hub/users/operator-credential.js';
import { CommandError } from './process-lifecycle.js';

export type MqttFlags = { config?: string; mqttUrl?: string };

/** Adds the broker flags every client command shares. */
export function withMqttFlags(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', "take the broker settings (mqtt:, or the embedded broker's port and the hub's operator credentials) from this hub or agent config")
    .option('--mqtt-url <url>', 'broker URL, mqtt://user:pass@host:port (default mqtt://127.0.0.1:1883, the embedded broker); credentials also from PUSHFLEET_MQTT_USERNAME / PUSHFLEET_MQTT_PASSWORD');
}

const HasMqtt = z.looseObject({
  mqtt: MqttConnectionConfig.optional(),
  broker: z.looseObject({ host: z.string().optional(), port: z.number().int().optional() }).optional(),
  stateDir: z.string().optional(),
});

export type ResolvedMqtt = MqttConnectionConfig & {
  /** Where the account came from, for an error message (never the password itself). */
  credentialSource: string;
};

/**
 * The broker a client command talks to, and as whom. The URL: --mqtt-url, else the config's
 * mqtt.url, else its embedded broker's port on this host, else the local default. The account,
 * first found: the URL's user:pass, PUSHFLEET_MQTT_USERNAME / PUSHFLEET_MQTT_PASSWORD, the
 * config's mqtt.username with mqtt.password or mqtt.passwordFile, the hub's operator.credentials
 * (in the config's stateDir, else the hub's default state directory) when this user can read it.
 */
export function mqttFromFlags(flags: MqttFlags): ResolvedMqtt {
  const file = flags.config ? validateConfig(HasMqtt, readConfigFile(flags.config), flags.config) : undefined;
  const fromFile = file?.mqtt;
  const embedded = file?.broker?.port !== undefined ? `mqtt://${!file.broker.host || file.broker.host === '0.0.0.0' ? '127.0.0.1' : file.broker.host}:${file.broker.port}` : undefined;
  const rawUrl = flags.mqttUrl ?? fromFile?.url ?? embedded ?? 'mqtt://127.0.0.1:1883';
  const source = flags.mqttUrl ? '--mqtt-url' : (flags.config ?? '(default)');
  const base = validateConfig(MqttConnectionConfig, { ...fromFile, url: rawUrl, clientId: undefined }, source);
  const inUrl = splitCredentials(rawUrl);
  const withAccount = (username: string | undefined, password: string | undefined, credentialSource: string): ResolvedMqtt => ({
    ...base,
    url: inUrl.url,
    username,
    password,
    passwordFile: undefined,
    credentialSource,
  });
  if (inUrl.username !== undefined) return withAccount(inUrl.username, inUrl.password, `the user in ${source === '--mqtt-url' ? '--mqtt-url' : `${source} mqtt.url`}`);
  const envUser = process.env.PUSHFLEET_MQTT_USERNAME;
  if (envUser) return withAccount(envUser, process.env.PUSHFLEET_MQTT_PASSWORD, 'PUSHFLEET_MQTT_USERNAME / PUSHFLEET_MQTT_PASSWORD');
  if (fromFile?.username !== undefined) {
    const account = brokerCredentials({ ...fromFile, url: inUrl.url });
    return withAccount(account.username, account.password, `${flags.config} mqtt.username`);
  }
  // The hub's own accounts matter only for the embedded broker; an external one has its own.
  if (!fromFile) {
    const dirs = file?.stateDir ? [file.stateDir] : [defaultStateDir('pushfleet'), '/var/lib/pushfleet'];
    for (const dir of dirs) {
      const found = readOperatorCredentials(dir);
      if (found) return withAccount(found.username, found.password, join(dir, 'operator.credentials'));
    }
  }
  return withAccount(undefined, undefined, 'none (anonymous; give --mqtt-url mqtt://user:pass@host, PUSHFLEET_MQTT_USERNAME / PUSHFLEET_MQTT_PASSWORD or -c <hub config>)');
}

/** Connects a command to its broker, failing with one clear line when none answers in time. */
export async function connectFromFlags(flags: MqttFlags, timeoutSeconds: number): Promise<MqttClient> {
  const cfg = mqttFromFlags(flags);
  try {
    return await connectMqtt(cfg, { timeoutMs: timeoutSeconds * 1000 });
  } catch (err) {
    if (refusedLogin(err)) throw new CommandError(`the broker at ${redactUrl(cfg.url)} refused the login (${(err as Error).message}); credentials from ${cfg.credentialSource}`);
    throw new CommandError(`cannot reach the broker at ${redactUrl(cfg.url)}: ${(err as Error).message}`);
  }
}

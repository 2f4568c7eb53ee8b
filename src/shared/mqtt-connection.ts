import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { z } from 'zod';

/** Broker connection keys, the same for hub, agent and every CLI command. */
export const MqttConnectionConfig = z
  .object({
    url: z
      .string()
      .regex(/^(mqtts?|wss?):\/\/[^\s]+$/, 'expected mqtt://, mqtts://, ws:// or wss:// URL'),
    username: z.string().optional(),
    /** Prefer PUSHFLEET_MQTT_PASSWORD in the environment over a password in a file. */
    password: z.string().optional(),
    clientId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(),
    keepalive: z.number().int().min(5).max(3600).default(30),
    tls: z
      .object({
        ca: z.string().optional().describe('path to a PEM CA bundle'),
        cert: z.string().optional().describe('path to a PEM client certificate'),
        key: z.string().optional().describe('path to a PEM client key'),
        rejectUnauthorized: z.boolean().default(true),
      })
      .strict()
      .optional(),
  })
  .strict();
export type MqttConnectionConfig = z.infer<typeof MqttConnectionConfig>;

export type Will = { topic: string; payload: string; retain: boolean; qos: 0 | 1 };

export function clientOptions(cfg: MqttConnectionConfig, will?: Will): IClientOptions {
  const password = cfg.password ?? process.env.PUSHFLEET_MQTT_PASSWORD;
  const tls = cfg.tls;
  return {
    clientId: cfg.clientId,
    username: cfg.username,
    password,
    keepalive: cfg.keepalive,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    // Persistent session (clean: false) needs a stable clientId; without one, start clean.
    clean: cfg.clientId === undefined,
    ...(tls && {
      ca: tls.ca ? readFileSync(tls.ca) : undefined,
      cert: tls.cert ? readFileSync(tls.cert) : undefined,
      key: tls.key ? readFileSync(tls.key) : undefined,
      rejectUnauthorized: tls.rejectUnauthorized,
    }),
    ...(will && { will: { ...will } }),
  };
}

/** Connects and resolves on the first CONNACK; afterwards mqtt.js reconnects by itself. */
export async function connectMqtt(cfg: MqttConnectionConfig, will?: Will): Promise<MqttClient> {
  return mqtt.connectAsync(cfg.url, clientOptions(cfg, will));
}

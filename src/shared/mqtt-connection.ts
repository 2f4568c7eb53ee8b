import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import mqtt, { MqttClient, type IClientOptions } from 'mqtt';
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

export type ConnectOptions = {
  will?: Will;
  /** Services pass this: connection errors are reported and mqtt.js keeps retrying. */
  onRetry?: (err: Error) => void;
  /** Commands pass this: give up when no CONNACK came within it. */
  timeoutMs?: number;
  /** Connect over this stream (a new one per attempt) instead of `cfg.url`: an in-process broker. */
  stream?: () => Duplex;
};

/**
 * Connects and resolves on the first CONNACK. Without `onRetry` the first error rejects, so a
 * command fails at once with the reason instead of retrying forever.
 */
export function connectMqtt(cfg: MqttConnectionConfig, opts: ConnectOptions = {}): Promise<MqttClient> {
  const stream = opts.stream;
  const client = stream ? new MqttClient(() => stream(), clientOptions(cfg, opts.will)) : mqtt.connect(cfg.url, clientOptions(cfg, opts.will));
  // mqtt.js leaves Nagle's algorithm on; with delayed ACKs that stalls QoS 1 round trips ~40 ms.
  client.on('connect', () => (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true));
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
      client.end(true);
      reject(err);
    };
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => fail(new Error(`no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    const onConnect = () => {
      clearTimeout(timer);
      client.off('error', onError);
      resolve(client);
    };
    const onError = (err: Error) => (opts.onRetry ? opts.onRetry(err) : fail(err));
    client.once('connect', onConnect);
    client.on('error', onError);
  });
}

/** How long a stopping service waits for the broker before it lets go regardless. */
export const CLOSE_DEADLINE_MS = 3000;

/** Resolves when `work` settles or `ms` passed, whichever is first; true if it settled. */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Says goodbye (a retained `farewell`, such as an offline status) and closes, within a deadline
 * whatever the broker does. A broker that goes away or stalls mid-shutdown (both units stopped at
 * once on a reboot) would otherwise keep a QoS 1 publish, or a graceful end waiting for its
 * unacknowledged messages, pending forever. What is not acknowledged by then is dropped: the last
 * will says offline, and unacknowledged pushes are in doubt, never published twice.
 */
export async function closeMqtt(client: MqttClient, farewell?: { topic: string; payload: string }, deadlineMs = CLOSE_DEADLINE_MS): Promise<void> {
  if (farewell && client.connected) await settledWithin(client.publishAsync(farewell.topic, farewell.payload, { qos: 1, retain: true }), deadlineMs);
  const unacknowledged = () => Object.keys(client.outgoing).length > 0;
  if (client.connected && unacknowledged()) await settledWithin(new Promise<void>((resolve) => client.once('outgoingEmpty', () => resolve())), deadlineMs);
  await settledWithin(client.endAsync(!client.connected || unacknowledged()), deadlineMs);
}

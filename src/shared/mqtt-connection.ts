import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import mqtt, { MqttClient, type IClientOptions } from 'mqtt';
import { z } from 'zod';
import { ConfigError } from './config-file.js';
import { brokerSocket } from './mqtt-socket.js';
import { splitCredentials } from './mqtt-url.js';

/** Broker connection keys, the same for hub, agent and every CLI command. */
export const MqttConnectionConfig = z
  .object({
    url: z
      .string()
      .regex(/^(mqtts?|wss?):\/\/[^\s]+$/, 'expected mqtt://, mqtts://, ws:// or wss:// URL'),
    username: z.string().optional(),
    /** Prefer `passwordFile` or PUSHFLEET_MQTT_PASSWORD in the environment over a password in a config. */
    password: z.string().optional(),
    /** A file holding the password (its first line), mode 0600, e.g. what `pushfleet users add` printed. */
    passwordFile: z.string().min(1).optional(),
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

/**
 * The account to log in with: the URL's `user:pass@`, else the config's username with its
 * password or passwordFile, else PUSHFLEET_MQTT_USERNAME / PUSHFLEET_MQTT_PASSWORD.
 */
export function brokerCredentials(cfg: Pick<MqttConnectionConfig, 'url' | 'username' | 'password' | 'passwordFile'>): { url: string; username?: string; password?: string } {
  const fromUrl = splitCredentials(cfg.url);
  if (fromUrl.username !== undefined) return fromUrl;
  const username = cfg.username ?? process.env.PUSHFLEET_MQTT_USERNAME;
  const password = cfg.password ?? (cfg.passwordFile ? readPasswordFile(cfg.passwordFile) : process.env.PUSHFLEET_MQTT_PASSWORD);
  return { url: fromUrl.url, ...(username !== undefined && { username }), ...(password !== undefined && { password }) };
}

export function readPasswordFile(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n', 1)[0]!.trim();
  } catch (err) {
    throw new ConfigError(`cannot read mqtt.passwordFile ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function clientOptions(cfg: MqttConnectionConfig, will?: Will): IClientOptions {
  const { username, password } = brokerCredentials(cfg);
  const tls = cfg.tls;
  return {
    clientId: cfg.clientId,
    username,
    password,
    keepalive: cfg.keepalive,
    reconnectPeriod: reconnectPeriodMs(),
    connectTimeout: 10_000,
    // Persistent session (clean: false) needs a stable clientId; without one, start clean.
    clean: cfg.clientId === undefined,
    // Not mqtt-packet's table of 65,536 pre-made 2-byte buffers (6 MB of heap, a third of an idle
    // agent's): writing a packet's few numbers without it costs nanoseconds.
    writeCache: false,
    // mqtt.js calls its debug logger several times per packet and re-arms the ping timer on every
    // one: ~6 % of a busy hub's CPU. DEBUG=mqttjs* still shows its log.
    ...(!process.env.DEBUG && { log: () => undefined }),
    reschedulePings: false,
    ...(tls && {
      ca: tls.ca ? readFileSync(tls.ca) : undefined,
      cert: tls.cert ? readFileSync(tls.cert) : undefined,
      key: tls.key ? readFileSync(tls.key) : undefined,
      rejectUnauthorized: tls.rejectUnauthorized,
    }),
    ...(will && { will: { ...will } }),
  };
}

/**
 * A fresh random wait between reconnect attempts, for each outage: a broker (or hub) that comes
 * back to 10,000 agents then sees their logins spread over two seconds instead of all in the same
 * millisecond of every second. mqtt.js reads it when an outage begins and keeps it until the
 * next CONNACK.
 */
export const reconnectPeriodMs = (random: () => number = Math.random): number => Math.round(RECONNECT_MIN_MS + random() * RECONNECT_SPREAD_MS);
const RECONNECT_MIN_MS = 500;
const RECONNECT_SPREAD_MS = 2000;

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
  const url = splitCredentials(cfg.url).url;
  const options = clientOptions(cfg, opts.will);
  const socket = opts.stream ?? brokerSocket(url, options);
  const client = socket ? new MqttClient(socket, options) : mqtt.connect(url, options);
  // As mqtt.connect() does: an error no one else listens for (a write after end while closing, a
  // TLS failure reported by both the socket builder and mqtt.js's stream handler) is not an
  // uncaught exception; the client reconnects or has been given up.
  client.on('error', () => undefined);
  // mqtt.js leaves Nagle's algorithm on; with delayed ACKs that stalls QoS 1 round trips ~40 ms.
  client.on('connect', () => {
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    client.options.reconnectPeriod = reconnectPeriodMs();
  });
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
    // mqtt.js gives up for good on a refused login (CONNACK 4 or 5); a service keeps trying, so
    // an account added or fixed in the broker's users file lets it in without a restart.
    // The timer holds the process: an agent that loads nothing else yet waits on this alone.
    if (opts.onRetry) {
      let retry: NodeJS.Timeout | undefined;
      client.on('error', (err) => {
        if (!refusedLogin(err)) return;
        clearTimeout(retry);
        retry = setTimeout(() => client.disconnecting || client.connected || client.reconnect(), LOGIN_RETRY_MS);
      });
      client.on('end', () => clearTimeout(retry));
    }
    client.once('connect', onConnect);
    client.on('error', onError);
  });
}

const LOGIN_RETRY_MS = 5000;
/** A CONNACK refusal: bad user name or password, or not authorized. */
export const refusedLogin = (err: unknown): boolean => [4, 5, 134, 135].includes((err as { code?: unknown }).code as number);

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

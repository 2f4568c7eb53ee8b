import { hostname, userInfo } from 'node:os';
import type { MqttClient } from 'mqtt';
import type { z } from 'zod';
import { decode, SCHEMA_VERSION } from '../shared/messages.js';
import { connectFromFlags, type MqttFlags } from './mqtt-flags.js';
import { CommandError } from './process-lifecycle.js';
import { newRequestId } from '../shared/contract/request-envelope.js';

export type MqttRequest<T> = {
  topic: string;
  payload: string;
  /** Subscribed before the request is sent, so an answer that comes at once is not missed. */
  replyTopic: string;
  reply: z.ZodType<T>;
  timeoutSeconds: number;
  /** The error line when no answer comes in time (which hub setting to check). */
  noAnswer: string;
};

/** Publishes one request to the hub and resolves with its first well-formed reply. */
export async function requestHub<T>(client: MqttClient, req: MqttRequest<T>): Promise<T> {
  await client.subscribeAsync(req.replyTopic, { qos: 1 });
  let onMessage: (topic: string, payload: Buffer) => void = () => undefined;
  const reply = new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new CommandError(`no answer from the hub within ${req.timeoutSeconds} s: ${req.noAnswer}`)), req.timeoutSeconds * 1000);
    onMessage = (topic, payload) => {
      if (topic !== req.replyTopic) return;
      const d = decode(req.reply, payload);
      if (!d.ok) return;
      clearTimeout(timer);
      resolve(d.value);
    };
    client.on('message', onMessage);
  }).finally(() => client.off('message', onMessage));
  await client.publishAsync(req.topic, req.payload, { qos: 1 });
  return reply;
}

/** Who asked, as engines record it (rollout history, job runs): user@host. */
export function operator(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (a container): keep "unknown"
  }
  return `${user}@${hostname()}`;
}

/** Where an engine takes operator requests: its topic, the reply topic of a request id, the reply's schema, and what to check when nobody answers. */
export type EngineRoute<T> = { topic: string; replyTopic(requestId: string): string; reply: z.ZodType<T>; noAnswer: string };

/** Sends one request to an engine in the envelope every engine expects (v, requestId, by) and waits for its reply. */
export function requestEngine<T>(client: MqttClient, route: EngineRoute<T>, op: object, timeoutSeconds: number): Promise<T> {
  const requestId = newRequestId();
  return requestHub(client, {
    topic: route.topic,
    payload: JSON.stringify({ v: SCHEMA_VERSION, requestId, by: operator(), ...op }),
    replyTopic: route.replyTopic(requestId),
    reply: route.reply,
    timeoutSeconds,
    noAnswer: route.noAnswer,
  });
}

/** A request as a command builds it: the engine's request without the envelope requestEngine adds. */
export type EngineOp<R> = R extends unknown ? Omit<R, 'v' | 'requestId' | 'by'> : never;

/** A command's one request: connects as its flags say, asks, and turns the engine's refusal into the command's one-line error (exit 1). */
export async function askEngine<T extends { ok: boolean; error: string | null }>(flags: MqttFlags & { wait: number }, route: EngineRoute<T>, op: object): Promise<T> {
  const client = await connectFromFlags(flags, flags.wait);
  try {
    const reply = await requestEngine(client, route, op, flags.wait);
    if (!reply.ok) throw new CommandError(reply.error ?? 'the hub refused the request');
    return reply;
  } finally {
    await client.endAsync();
  }
}

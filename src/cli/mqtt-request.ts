import type { MqttClient } from 'mqtt';
import type { z } from 'zod';
import { decode } from '../shared/messages.js';
import { CommandError } from './process-lifecycle.js';

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

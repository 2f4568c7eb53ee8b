import { randomUUID } from 'node:crypto';
import { userInfo, hostname } from 'node:os';
import type { MqttClient } from 'mqtt';
import { decode, RolloutReply, SCHEMA_VERSION, type RolloutControl } from '../shared/messages.js';
import { ROLLOUT_CONTROL, rolloutReplyTopic } from '../shared/topics.js';
import { CommandError } from './process-lifecycle.js';

/** Who asked, as recorded in the rollout history: user@host. */
export function operator(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (a container): keep "unknown"
  }
  return `${user}@${hostname()}`;
}

/** A control request as a command builds it; the envelope (v, requestId, by) is added here. */
export type ControlOp = RolloutControl extends infer R ? (R extends unknown ? Omit<R, 'v' | 'requestId' | 'by'> : never) : never;

/** Sends one control request to the hub's rollouts engine and waits for its reply. */
export async function requestRollouts(client: MqttClient, op: ControlOp, timeoutSeconds: number): Promise<RolloutReply> {
  const requestId = randomUUID().replaceAll('-', '');
  const replyTopic = rolloutReplyTopic(requestId);
  await client.subscribeAsync(replyTopic, { qos: 1 });
  let onMessage: (topic: string, payload: Buffer) => void = () => undefined;
  const reply = new Promise<RolloutReply>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new CommandError(`no answer from the hub within ${timeoutSeconds} s: is it running, with engines.rollouts enabled, on this broker?`)),
      timeoutSeconds * 1000,
    );
    onMessage = (topic, payload) => {
      if (topic !== replyTopic) return;
      const d = decode(RolloutReply, payload);
      if (!d.ok) return;
      clearTimeout(timer);
      resolve(d.value);
    };
    client.on('message', onMessage);
  }).finally(() => client.off('message', onMessage));
  await client.publishAsync(ROLLOUT_CONTROL, JSON.stringify({ v: SCHEMA_VERSION, requestId, by: operator(), ...op }), { qos: 1 });
  return reply;
}

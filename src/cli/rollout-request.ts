import { randomUUID } from 'node:crypto';
import { userInfo, hostname } from 'node:os';
import type { MqttClient } from 'mqtt';
import { RolloutReply, type RolloutControl } from '../shared/contract/rollout-messages.js';
import { SCHEMA_VERSION } from '../shared/messages.js';
import { ROLLOUT_CONTROL, rolloutReplyTopic } from '../shared/topics.js';
import { requestHub } from './mqtt-request.js';

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
export function requestRollouts(client: MqttClient, op: ControlOp, timeoutSeconds: number): Promise<RolloutReply> {
  const requestId = randomUUID().replaceAll('-', '');
  return requestHub(client, {
    topic: ROLLOUT_CONTROL,
    payload: JSON.stringify({ v: SCHEMA_VERSION, requestId, by: operator(), ...op }),
    replyTopic: rolloutReplyTopic(requestId),
    reply: RolloutReply,
    timeoutSeconds,
    noAnswer: 'is it running, with engines.rollouts enabled, on this broker?',
  });
}

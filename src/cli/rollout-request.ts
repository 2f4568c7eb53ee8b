import type { MqttClient } from 'mqtt';
import { RolloutReply, type RolloutControl } from '../shared/contract/rollout-messages.js';
import { ROLLOUT_CONTROL, rolloutReplyTopic } from '../shared/topics.js';
import { requestEngine, type EngineRoute } from './mqtt-request.js';

/** A control request as a command builds it; the envelope (v, requestId, by) is added by requestEngine. */
export type ControlOp = RolloutControl extends infer R ? (R extends unknown ? Omit<R, 'v' | 'requestId' | 'by'> : never) : never;

const ROLLOUTS: EngineRoute<RolloutReply> = {
  topic: ROLLOUT_CONTROL,
  replyTopic: rolloutReplyTopic,
  reply: RolloutReply,
  noAnswer: 'is it running, with engines.rollouts enabled, on this broker?',
};

/** Sends one control request to the hub's rollouts engine and waits for its reply. */
export function requestRollouts(client: MqttClient, op: ControlOp, timeoutSeconds: number): Promise<RolloutReply> {
  return requestEngine(client, ROLLOUTS, op, timeoutSeconds);
}

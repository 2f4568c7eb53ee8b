import type { MqttClient } from 'mqtt';
import type { z } from 'zod';
import { SERVICES_REQUEST, ServicesReply, servicesReplyTopic, ServicesRequest } from '../shared/contract/services-engine-messages.js';
import { requestEngine, type EngineRoute } from './mqtt-request.js';

/** A request as a command builds it; the envelope (v, requestId, by) is added by requestEngine. */
export type ServicesOp = z.input<typeof ServicesRequest> extends infer R ? (R extends unknown ? Omit<R, 'v' | 'requestId' | 'by'> : never) : never;

const SERVICES: EngineRoute<ServicesReply> = {
  topic: SERVICES_REQUEST,
  replyTopic: servicesReplyTopic,
  reply: ServicesReply,
  noAnswer: 'is it running, with engines.services enabled, on this broker?',
};

/** Sends one request to the hub's services engine and waits for its reply. */
export function requestServices(client: MqttClient, op: ServicesOp, timeoutSeconds: number): Promise<ServicesReply> {
  return requestEngine(client, SERVICES, op, timeoutSeconds);
}

import type { z } from 'zod';
import { SERVICES_REQUEST, ServicesReply, servicesReplyTopic, ServicesRequest } from '../shared/contract/services-engine-messages.js';
import type { EngineOp, EngineRoute } from './mqtt-request.js';

export type ServicesOp = EngineOp<z.input<typeof ServicesRequest>>;

/** The services engine's door for operator requests (`pushfleet services …`; requestEngine or askEngine with it). */
export const SERVICES: EngineRoute<ServicesReply> = {
  topic: SERVICES_REQUEST,
  replyTopic: servicesReplyTopic,
  reply: ServicesReply,
  noAnswer: 'is it running, with engines.services enabled, on this broker?',
};

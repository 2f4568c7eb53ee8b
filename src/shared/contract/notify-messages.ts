import { z } from 'zod';
import { PushMessage, SCHEMA_VERSION } from '../messages.js';

const RequestId = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'expected 1-64 letters, digits or "-"');

/** `pushfleet notify` → hub, on `pushfleet/notify/request`: publish this push (its deliveryId dedupes retries). */
export const NotifyRequest = z.object({ v: z.literal(SCHEMA_VERSION), requestId: RequestId, push: PushMessage });
export type NotifyRequest = z.infer<typeof NotifyRequest>;

/**
 * Hub → `pushfleet notify`, on `pushfleet/notify/replies/<requestId>`. `published`: the broker
 * acknowledged it; `duplicate`: an earlier request with this deliveryId was published;
 * `in-doubt`: handed to the broker without an acknowledgement, never published again;
 * `not-published`: nothing was, try again.
 */
export const NotifyReply = z.object({
  v: z.literal(SCHEMA_VERSION),
  requestId: RequestId,
  state: z.enum(['published', 'duplicate', 'in-doubt', 'not-published']),
  detail: z.string(),
});
export type NotifyReply = z.infer<typeof NotifyReply>;

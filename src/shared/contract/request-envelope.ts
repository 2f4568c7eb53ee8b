import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { SCHEMA_VERSION } from '../messages.js';

/** The fields of every operator request to an engine (`pushfleet jobs|services …`): who asks, and where the answer goes. */
export const requestEnvelope = { v: z.literal(SCHEMA_VERSION), requestId: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/), by: z.string().max(200) };

/** A new request id, as the envelope takes it (32 hex digits). */
export const newRequestId = (): string => randomUUID().replaceAll('-', '');

/** The fields of every engine's answer to one: `error` is one line a person can act on. */
export const replyEnvelope = { v: z.literal(SCHEMA_VERSION), requestId: z.string(), ok: z.boolean(), error: z.string().nullable() };

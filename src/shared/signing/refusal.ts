import { z } from 'zod';
import type { RefusalReason } from './verifier.js';

export const REFUSAL_REASONS = ['unsigned', 'bad-signature', 'unknown-key', 'wrong-topic', 'future', 'too-old', 'replayed'] as const satisfies readonly RefusalReason[];

/** What an agent publishes on `pushfleet/agents/<id>/refused` for each message it would not act on. */
export const SignedRefusal = z.object({
  topic: z.string(),
  reason: z.enum(REFUSAL_REASONS),
  detail: z.string(),
  at: z.iso.datetime(),
});
export type SignedRefusal = z.infer<typeof SignedRefusal>;

import { z } from 'zod';
import { SCHEMA_VERSION, Timestamp, check, type Decoded } from '../messages.js';

// ─────────────────────────────────────────────────────────────────────────────────────────────
// Semaphore engine (coordinosaur wire format). Inputs are what coordinosaur clients send, taken
// as leniently as the seed took them; outputs beyond the seed's `go` are JSON events with `v`.
// Topics: src/shared/topics.ts; reference: src/hub/engines/semaphore/README.md.
// ─────────────────────────────────────────────────────────────────────────────────────────────

/** A job uid is one topic level (replies go to `go/{uid}`); numbers count as their digits, like the seed's str(). */
export const SemUid = z
  .union([z.string(), z.number().int().transform(String)], { error: 'expected a string (or integer) uid' })
  .pipe(z.string().min(1, 'uid is empty').max(256).regex(/^[^/+#\u0000]+$/, 'a uid may not contain "/", "+", "#" or NUL'));

/** Seconds as a number, or a digit string as the seed's int() accepted; ten years at most. */
const SemSeconds = z
  .union([z.number(), z.string().regex(/^\d+$/).transform(Number)], { error: 'expected a number of seconds' })
  .pipe(z.number().nonnegative('expected seconds ≥ 0').max(315_360_000));

/** Names one registration of a uid, so its client can tell its own go from an earlier job's retained one. */
export const SemToken = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a token is 1-64 letters, digits, ".", "_" or "-"');

/** `{prefix}/{channel}/register`. Unknown keys are ignored so any coordinosaur client fits. */
export const SemRegister = z.looseObject({
  uid: SemUid,
  timeout: SemSeconds,
  /** pushfleet extension: give up waiting after this many seconds (the engine publishes `expired/{uid}`). */
  queueTimeout: SemSeconds.optional(),
  /** pushfleet extension: the go becomes a JSON `SemGo` carrying it, and a repeated register is a no-op. */
  token: SemToken.optional(),
});
export type SemRegister = z.infer<typeof SemRegister>;

/** `finished` / `aborted` payload: the raw uid, or the uid as a JSON string. */
export function decodeSemUid(raw: Buffer | string): Decoded<string> {
  const text = raw.toString();
  let value: unknown = text;
  if (text.startsWith('"')) {
    try {
      value = JSON.parse(text);
    } catch {
      // a uid that merely starts with a quote: take it as it is
    }
  }
  return check(SemUid, value);
}

/** `concurrency/set` payload: a whole number ≥ 0, or empty to go back to the configured value. */
export function decodeSemConcurrency(raw: Buffer | string): Decoded<number | null> {
  const text = raw.toString().trim();
  if (text === '') return { ok: true, value: null };
  if (!/^\+?\d{1,9}$/.test(text)) return { ok: false, error: `expected a whole number ≥ 0, got ${JSON.stringify(text.slice(0, 40))}` };
  return { ok: true, value: Number(text) };
}

/** `go/{uid}` (retained) of a registration that sent a token; without one the go is the raw uid, as in the seed. */
export const SemGo = z.object({ v: z.literal(SCHEMA_VERSION), uid: z.string(), token: z.string() });
export type SemGo = z.infer<typeof SemGo>;

/** `queued/{uid}`: the job waits; sent on register and again (throttled) as the queue moves. */
export const SemQueued = z.object({
  v: z.literal(SCHEMA_VERSION),
  uid: z.string(),
  token: z.string().optional(),
  /** 1 = next in line. */
  position: z.number().int().positive(),
  waiting: z.number().int().nonnegative(),
});
export type SemQueued = z.infer<typeof SemQueued>;

/** `expired/{uid}` (retained for a while): a working job outlived timeout + offset, or a waiter its queueTimeout. */
export const SemExpired = z.object({
  v: z.literal(SCHEMA_VERSION),
  uid: z.string(),
  /** cancelled: the hub withdrew the job (a rollout was aborted or superseded). */
  reason: z.enum(['timeout', 'queue-timeout', 'cancelled']),
  at: Timestamp,
  /** The registration's token, when it sent one. */
  token: z.string().optional(),
});
export type SemExpired = z.infer<typeof SemExpired>;

export const SemErrorCode = z.enum(['bad-topic', 'unknown-action', 'bad-json', 'bad-payload', 'duplicate-uid', 'unknown-uid', 'table-full', 'not-allowed']);
export type SemErrorCode = z.infer<typeof SemErrorCode>;

/** `{prefix}/{channel}/error` (or `{prefix}/error` when the topic has no channel): nothing changed. */
export const SemErrorEvent = z.object({
  v: z.literal(SCHEMA_VERSION),
  code: SemErrorCode,
  error: z.string(),
  uid: z.string().optional(),
  topic: z.string(),
});
export type SemErrorEvent = z.infer<typeof SemErrorEvent>;

/** `infos/reply`: a channel's slots, queue (in order) and quota windows. */
export const SemInfo = z.object({
  v: z.literal(SCHEMA_VERSION),
  channel: z.string(),
  maxConcurrentJobs: z.number().int().nonnegative(),
  timeoutOffset: z.number().nonnegative(),
  working: z.array(z.object({ uid: z.string(), grantedAt: Timestamp, expiresAt: Timestamp })),
  waiting: z.array(z.object({ uid: z.string(), registeredAt: Timestamp, queueDeadline: Timestamp.nullable() })),
  quotas: z.array(
    z.object({ seconds: z.number(), name: z.string(), limit: z.number().int(), used: z.number().int(), freeAt: Timestamp.nullable() }),
  ),
});
export type SemInfo = z.infer<typeof SemInfo>;

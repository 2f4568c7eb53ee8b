import { sign as edSign, verify as edVerify } from 'node:crypto';
import { z } from 'zod';
import type { SigningKey, VerifyKey } from './keys.js';

/** What the hub's signature covers and how it travels: one JSON object per MQTT message. */
export const SIGNED_V1 = 'signed/v1';
const DOMAIN = 'pushfleet-signed-v1';

export const Envelope = z
  .object({
    pushfleet: z.literal(SIGNED_V1),
    kid: z.string().regex(/^[0-9a-f]{16}$/),
    topic: z.string().min(1).max(65_535),
    ts: z.number().int().nonnegative(),
    seq: z.number().int().nonnegative(),
    payload: z.string(),
    sig: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 Ed25519 signature'),
  })
  .strict();
export type Envelope = z.infer<typeof Envelope>;

export type EnvelopeHead = Pick<Envelope, 'kid' | 'topic' | 'ts' | 'seq'>;

/** The signed bytes: domain, kid, topic, ts and seq on lines of their own, then the payload. */
export function signedBytes(e: EnvelopeHead, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${DOMAIN}\n${e.kid}\n${e.topic}\n${e.ts}\n${e.seq}\n`), payload]);
}

/** The message as published: `payload` with its head and `sig`, the signature over signedBytes. */
export function envelopeBytes(head: EnvelopeHead, payload: Buffer, sig: Buffer): Buffer {
  return Buffer.from(JSON.stringify({ pushfleet: SIGNED_V1, ...head, payload: payload.toString('utf8'), sig: sig.toString('base64') } satisfies Envelope));
}

/** The message the hub publishes on `topic`: `payload` signed at `ts` (epoch ms) with sequence `seq`. */
export function sign(key: SigningKey, topic: string, payload: string | Buffer, ts: number, seq: number): Buffer {
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = { kid: key.kid, topic, ts, seq };
  return envelopeBytes(head, bytes, edSign(null, signedBytes(head, bytes), key.privateKey));
}

export type Opened = { ok: true; envelope: Envelope; payload: Buffer } | { ok: false; reason: 'unsigned' | 'unknown-key' | 'bad-signature'; detail: string };

/** The envelope of a message, if it is one (not checked: see open). */
export function parseEnvelope(bytes: Buffer): Envelope | null {
  // Cheap first look: a plain message (a seed word, a JSON object of another shape) is no envelope.
  if (bytes.length < 2 || bytes[0] !== 0x7b) return null;
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  const e = Envelope.safeParse(json);
  return e.success ? e.data : null;
}

/**
 * Checks a message's signature with the hub's key: whether it is an envelope at all, by a key
 * this side knows, and signed over exactly these bytes. Where it was published, when and in
 * which order are the Verifier's questions.
 */
export function open(keys: readonly VerifyKey[], bytes: Buffer): Opened {
  const envelope = parseEnvelope(bytes);
  if (!envelope) return { ok: false, reason: 'unsigned', detail: 'not a pushfleet signed/v1 envelope' };
  const key = keys.find((k) => k.kid === envelope.kid);
  if (!key) return { ok: false, reason: 'unknown-key', detail: `signed by key ${envelope.kid}, not the hub's (${keys.map((k) => k.kid).join(', ') || 'none configured'})` };
  const payload = Buffer.from(envelope.payload);
  if (!edVerify(null, signedBytes(envelope, payload), key.publicKey, Buffer.from(envelope.sig, 'base64'))) {
    return { ok: false, reason: 'bad-signature', detail: `the signature of key ${envelope.kid} does not match the message` };
  }
  return { ok: true, envelope, payload };
}

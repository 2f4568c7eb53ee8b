import { open } from './envelope.js';
import type { VerifyKey } from './keys.js';
import type { TopicContract } from '../contract/topic-table.js';
import { signedTopic } from './signed-topics.js';

export type RefusalReason = 'unsigned' | 'bad-signature' | 'unknown-key' | 'wrong-topic' | 'future' | 'too-old' | 'replayed';

export type Verdict =
  /** `payload`: the inner message to decode. `duplicate`: the last accepted one again (a retained copy redelivered). */
  | { ok: true; payload: Buffer; duplicate: boolean }
  | { ok: false; reason: RefusalReason; detail: string };

/**
 * The last message accepted per topic: its seq and the start of its signature, so a redelivered
 * copy is told from a replay. The hub never signs two messages with one seq; the prefix is
 * enough to tell them apart and keeps the agent's file small.
 */
const SIG_PREFIX = 24;
/** The last message accepted on one topic. */
export type SeenEntry = { seq: number; sig: string };
export type SeenStore = {
  get(topic: string): SeenEntry | undefined;
  /** Durable before it returns: the caller acts on the message next. */
  put(topic: string, entry: SeenEntry): void;
};

/** The hub's and an agent's clocks may disagree by this much. */
export const FUTURE_TOLERANCE_MS = 5 * 60_000;
/** A command (rollback, orchestrator step) older than this is not run: it was held back or replayed. */
export const DEFAULT_MAX_AGE_MS = 300_000;

export type VerifierOptions = {
  /** Which topics must be signed, and which of them are retained state. */
  contract: TopicContract;
  keys: readonly VerifyKey[];
  seen: SeenStore;
  now(): number;
  maxAgeMs?: number;
};

/**
 * The agent's check of everything that can make it act: signed by the hub's key, for the topic it
 * arrived on, not from the future, not an old command, and not older than what this topic last
 * carried. Topics that need no signature pass through unchanged.
 */
export class Verifier {
  private readonly maxAgeMs: number;

  constructor(private readonly opts: VerifierOptions) {
    this.maxAgeMs = opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  }

  check(topic: string, bytes: Buffer): Verdict {
    const spec = signedTopic(this.opts.contract, topic);
    if (!spec) return { ok: true, payload: bytes, duplicate: false };
    if (bytes.length === 0 && spec.emptyClears) return { ok: true, payload: bytes, duplicate: false };
    const opened = open(this.opts.keys, bytes);
    if (!opened.ok) return opened;
    const { envelope: e, payload } = opened;
    if (e.topic !== topic) return { ok: false, reason: 'wrong-topic', detail: `signed for ${e.topic}, published on ${topic}` };
    const now = this.opts.now();
    if (e.ts > now + FUTURE_TOLERANCE_MS) return { ok: false, reason: 'future', detail: `signed at ${iso(e.ts)}, ${Math.round((e.ts - now) / 1000)} s ahead of this clock (tolerance ${FUTURE_TOLERANCE_MS / 1000} s)` };
    if (spec.kind === 'command' && now - e.ts > this.maxAgeMs) return { ok: false, reason: 'too-old', detail: `signed at ${iso(e.ts)}, ${Math.round((now - e.ts) / 1000)} s ago (a command is taken for ${this.maxAgeMs / 1000} s)` };
    const last = this.opts.seen.get(topic);
    const sig = e.sig.slice(0, SIG_PREFIX);
    if (last && e.seq === last.seq && sig === last.sig) return { ok: true, payload, duplicate: true };
    if (last && e.seq <= last.seq) return { ok: false, reason: 'replayed', detail: `sequence ${e.seq} is not above ${last.seq}, the last accepted on this topic` };
    this.opts.seen.put(topic, { seq: e.seq, sig });
    return { ok: true, payload, duplicate: false };
  }
}

const iso = (ms: number): string => (Number.isFinite(new Date(ms).getTime()) ? new Date(ms).toISOString() : String(ms));

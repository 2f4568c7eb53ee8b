/**
 * `signing`: what the hub's signature costs per message, in this process on one core: the hub
 * signing a head (envelope built, Ed25519 signature) and an agent opening it (parse, topic,
 * clock and sequence checks, signature verified). Payload: a real push message of ~1 KB.
 */
import { generateKeyPairSync } from 'node:crypto';
import { sign } from '../../src/shared/signing/envelope.js';
import { keyId, type SigningKey } from '../../src/shared/signing/keys.js';
import { Verifier, type SeenEntry } from '../../src/shared/signing/verifier.js';
import { SequenceCounter } from '../../src/shared/signing/sequence.js';
import { TopicContract } from '../../src/shared/contract/topic-table.js';
import { buildPushMessage } from '../../src/shared/push-message.js';
import { headTopic } from '../../src/shared/topics.js';
import { percentile, round, type Figures, type Scenario } from '../scenario.js';

const MESSAGES = 20_000;
const WARMUP = 2_000;
/** Distinct refs, so the verifier's per-topic sequence map is as busy as an agent's at most. */
const TOPICS = 1_000;

function pushPayload(i: number): string {
  const sha = i.toString(16).padStart(40, '0');
  return JSON.stringify(
    buildPushMessage({
      deliveryId: `bench-${i}`, source: 'github', repo: 'acme/web', ref: `refs/heads/b${i % TOPICS}`, before: '0'.repeat(40), after: sha,
      created: false, deleted: false, forced: false, pusher: { name: 'bench', email: 'bench@example.com' },
      headCommit: { id: sha, timestamp: new Date().toISOString(), author: { name: 'Bench', email: 'bench@example.com', username: 'bench' }, message: 'x'.repeat(600) },
      cloneUrl: 'https://github.com/acme/web.git', receivedAt: new Date().toISOString(),
    }),
  );
}

/** Per-call µs and overall messages/s of `fn` over `inputs`, after running it over `warmup`. */
function measure<T>(warmup: readonly T[], inputs: readonly T[], fn: (x: T) => unknown): { samples: number[]; perSecond: number } {
  for (const x of warmup) fn(x);
  const samples: number[] = [];
  const started = performance.now();
  for (const x of inputs) {
    const t = performance.now();
    fn(x);
    samples.push((performance.now() - t) * 1000);
  }
  return { samples, perSecond: inputs.length / ((performance.now() - started) / 1000) };
}

const figures = (name: string, m: { samples: number[]; perSecond: number }): Figures => ({
  [`${name} p50 (µs)`]: round(percentile(m.samples, 50), 1),
  [`${name} p99 (µs)`]: round(percentile(m.samples, 99), 1),
  [`${name} (messages/s, one core)`]: Math.round(m.perSecond),
});

/** An agent's verifier with its seen sequences in memory (the file write is the agent's, per accepted head). */
const verifierFor = (key: SigningKey): Verifier => {
  const seen = new Map<string, SeenEntry>();
  return new Verifier({ contract: new TopicContract(), keys: [key], seen: { get: (t) => seen.get(t), put: (t, e) => void seen.set(t, e) }, now: Date.now });
};

async function run(): Promise<Figures> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const key: SigningKey = { privateKey, publicKey, kid: keyId(publicKey) };
  const seq = new SequenceCounter();
  const messages = Array.from({ length: WARMUP + MESSAGES }, (_, i) => ({ topic: headTopic('acme/web', `refs/heads/b${i % TOPICS}`), payload: pushPayload(i) }));
  const signed: { topic: string; bytes: Buffer }[] = [];
  const seal = (m: { topic: string; payload: string }) => {
    const now = Date.now();
    signed.push({ topic: m.topic, bytes: sign(key, m.topic, m.payload, now, seq.next(now)) });
  };
  const signing = measure(messages.slice(0, WARMUP), messages.slice(WARMUP), seal);
  const warm = verifierFor(key);
  const agent = verifierFor(key);
  let refused = 0;
  for (const s of signed.slice(0, WARMUP)) warm.check(s.topic, s.bytes);
  const verifying = measure([], signed.slice(WARMUP), (s) => agent.check(s.topic, s.bytes).ok || refused++);
  if (refused > 0) throw new Error(`${refused} of the benchmark's own messages were refused`);
  return {
    'payload (bytes)': messages[0]!.payload.length,
    'envelope (bytes)': signed[0]!.bytes.length,
    ...figures('sign', signing),
    ...figures('verify', verifying),
  };
}

export const signingScenarios: Scenario[] = [{ name: `signing: Ed25519 sign and verify, ${MESSAGES} head messages`, run }];

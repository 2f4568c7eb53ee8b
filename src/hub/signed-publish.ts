import { sign as edSign } from 'node:crypto';
import { envelopeBytes, open, signedBytes } from '../shared/signing/envelope.js';
import type { SigningKey } from '../shared/signing/keys.js';
import { signedTopic } from '../shared/signing/signed-topics.js';
import type { TopicContract } from '../shared/contract/topic-table.js';
import { ROOT } from '../shared/topics.js';
import type { HeadStore } from './engines/heads/head-store.js';

export type HubPublish = (topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain?: boolean }) => Promise<unknown>;

const HEADS_PREFIX = `${ROOT}/heads/`;

/** Makes the Ed25519 signature of some bytes (a SigningWorker, or in-process). */
export type SignBytes = (data: Buffer) => Promise<Buffer>;

/** Signs what must be signed with the hub's key; with signing disabled (null key) nothing is. */
export class Signer {
  /** `nextSeq`: the hub's sequence (persistedSequence). */
  constructor(
    private readonly key: SigningKey | null,
    private readonly contract: TopicContract,
    private readonly nextSeq: (nowMs: number) => number,
    private readonly signBytes: SignBytes = async (data) => edSign(null, data, key!.privateKey),
    private readonly now: () => number = Date.now,
  ) {}

  /** The bytes to publish on `topic`: an envelope for a topic that must be signed, else the payload as is. */
  async seal(topic: string, payload: string | Buffer): Promise<Buffer> {
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
    const spec = this.key && signedTopic(this.contract, topic);
    // An empty payload clears a topic where that cannot move an agent; on a pin it is signed (an unpin).
    if (!spec || (bytes.length === 0 && spec.emptyClears)) return bytes;
    const now = this.now();
    // The sequence is taken now, in publish order; the signer answers in the same order.
    const head = { kid: this.key!.kid, topic, ts: now, seq: this.nextSeq(now) };
    return envelopeBytes(head, bytes, await this.signBytes(signedBytes(head, bytes)));
  }

  /** The inner payload of a message the hub signed itself on `topic`, or null (someone else's, or for another topic). */
  unseal(topic: string, bytes: Buffer): Buffer | null {
    const spec = this.key && signedTopic(this.contract, topic);
    if (!spec || (bytes.length === 0 && spec.emptyClears)) return bytes;
    const opened = open([this.key!], bytes);
    return opened.ok && opened.envelope.topic === topic ? opened.payload : null;
  }
}

/**
 * The hub's one way out to the broker (webhook pushes, `notify` requests, every engine): each
 * message that must be signed is signed here, and each head is remembered in the HeadStore as
 * the signed bytes that went out, so its echo is recognised and it can be put back later.
 * `republish` sends stored heads again as they are (already signed, with their first seq).
 */
export function signedPublisher(
  raw: HubPublish,
  signer: Signer,
  heads: HeadStore,
  storeFailed: (topic: string, err: unknown) => void,
): { publish: HubPublish; republish: (topic: string, bytes: Buffer) => Promise<unknown> } {
  const send = (topic: string, bytes: Buffer, opts: { qos: 0 | 1; retain?: boolean }): Promise<unknown> => {
    if (!topic.startsWith(HEADS_PREFIX)) return raw(topic, bytes, opts);
    heads.expectOwn(topic, bytes);
    return raw(topic, bytes, opts).then((acked) => {
      // Published either way: a full disk costs the copy kept for a restart, not the push.
      heads.put(topic, bytes).catch((err: unknown) => storeFailed(topic, err));
      return acked;
    });
  };
  // Messages reach the broker in the order they were published, signed or not (a go, then the
  // clear of that go, must not swap), while signatures are made meanwhile.
  let tail: Promise<unknown> = Promise.resolve();
  return {
    publish(topic, payload, opts) {
      const sealed = signer.seal(topic, payload);
      const sent = tail.then(() => sealed).then((bytes) => ({ acked: send(topic, bytes, opts) }));
      tail = sent.catch(() => undefined);
      return sent.then(({ acked }) => acked);
    },
    republish(topic, bytes) {
      heads.expectOwn(topic, bytes);
      return raw(topic, bytes, { qos: 1, retain: true });
    },
  };
}

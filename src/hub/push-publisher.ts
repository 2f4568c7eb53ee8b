import type { MqttClient } from 'mqtt';
import type { PushMessage } from '../shared/messages.js';
import { settledWithin } from '../shared/mqtt-connection.js';
import { headTopic, pushTopic } from '../shared/topics.js';

const PUSH_TOPIC_PREFIX = pushTopic('');

/** Publishes one message and resolves once the broker has it (a PUBACK, or the embedded broker's own publish). */
export type PublishFn = (topic: string, payload: Buffer, opts: { qos: 1; retain?: boolean }) => Promise<unknown>;

/**
 * Hands a push to the broker: the event on `github/<owner>/<repo>` and the ref's retained head,
 * both QoS 1 (the hub's publish signs the head and keeps it, see signed-publish.ts). Resolves
 * when the broker has acknowledged both, however long that takes: the caller decides how long
 * to wait for the answer, the publish itself is never withdrawn.
 */
export async function sendPush(publish: PublishFn, push: PushMessage): Promise<void> {
  // Encoded once: the same bytes go to both topics.
  const payload = Buffer.from(JSON.stringify(push));
  // A deleted ref clears its retained head so no agent converges on a branch that is gone.
  const head = push.deleted ? Buffer.alloc(0) : payload;
  await Promise.all([publish(pushTopic(push.repo), payload, { qos: 1 }), publish(headTopic(push.repo, push.ref), head, { qos: 1, retain: true })]);
}

/** Why `withinMs` gave up waiting; the promise it raced may still settle later. */
export class AckTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`broker did not acknowledge within ${timeoutMs} ms`);
  }
}

/** `acked`, or an AckTimeout once `timeoutMs` passed first. */
export async function withinMs<T>(acked: Promise<T>, timeoutMs: number): Promise<T> {
  if (await settledWithin(acked, timeoutMs)) return acked;
  throw new AckTimeout(timeoutMs);
}

/**
 * mqtt.js resends every unacknowledged QoS 1 publish after a reconnect. For a push that would
 * break "at most once": the broker may have taken the first copy before the connection broke.
 * So on each connection loss the client's unacknowledged `github/…` publishes are withdrawn; their
 * senders see an error, and the hub keeps those deliveries in doubt (never published again).
 * Retained heads are still resent: a head is state, and a second copy changes nothing.
 */
export function withdrawPushesOnConnectionLoss(client: MqttClient): void {
  client.on('close', () => {
    for (const key of Object.keys(client.outgoing)) {
      const messageId = Number(key);
      client.outgoingStore.get({ messageId }, (err, packet) => {
        if (!err && packet?.cmd === 'publish' && packet.topic.startsWith(PUSH_TOPIC_PREFIX)) client.removeOutgoingMessage(messageId);
      });
    }
  });
}

import type { MqttClient } from 'mqtt';
import type { PushMessage } from '../shared/messages.js';
import { headTopic, pushTopic } from '../shared/topics.js';

/**
 * Publishes a push: the event on `github/<owner>/<repo>` and the ref's retained head, both QoS 1.
 * Resolves only when the broker has acknowledged both, so callers can tell GitHub the truth.
 */
export async function publishPush(client: MqttClient, push: PushMessage, timeoutMs: number): Promise<void> {
  const payload = JSON.stringify(push);
  // A deleted ref clears its retained head so no agent converges on a branch that is gone.
  const head = push.deleted ? '' : payload;
  const acked = Promise.all([
    client.publishAsync(pushTopic(push.repo), payload, { qos: 1 }),
    client.publishAsync(headTopic(push.repo, push.ref), head, { qos: 1, retain: true }),
  ]);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`broker did not acknowledge within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([acked, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

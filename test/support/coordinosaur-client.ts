import type { MqttClient } from 'mqtt';
import { SemInfo } from '../../src/shared/contract/semaphore-messages.js';
import type { Cleanup } from './cleanup.js';
import { unrestrictedUrl } from './mosquitto.js';
import { watch } from './test-hub.js';
import { waitFor } from './wait.js';

export type Recorded = { topic: string; payload: string };

/**
 * A client speaking raw coordinosaur MQTT as the seed's clients do (QoS 0 publishes, plain
 * strings), recording everything under both prefix styles. It may send what no ACL lets a client
 * send (malformed topics), to see the hub answer them.
 */
export async function coordinosaurClient(cleanup: Cleanup, url: string) {
  const { client, messages } = await watch(cleanup, await unrestrictedUrl(url), 'coordinosaur/#');
  await client.subscribeAsync('/coordinosaur/#', { qos: 1 });
  const on = (topic: string) => messages.filter((m) => m.topic === topic).map((m) => m.payload);
  return {
    client: client as MqttClient,
    messages,
    on,
    publish: (topic: string, payload: string) => client.publishAsync(topic, payload, { qos: 0 }),
    register: (channel: string, uid: string, timeout = 60, route = 'coordinosaur', extra: Record<string, unknown> = {}) =>
      client.publishAsync(`${route}/${channel}/register`, JSON.stringify({ uid, timeout, ...extra }), { qos: 0 }),
    /** The payload of the first message on `topic`, waiting for it. */
    seen: (topic: string, timeoutMs?: number) => waitFor(() => `${topic}; seen ${JSON.stringify(messages.map((m) => m.topic))}`, () => on(topic)[0], timeoutMs),
    /** Error events on a channel, parsed. */
    errors: (channel: string) => on(`coordinosaur/${channel}/error`).map((p) => JSON.parse(p)),
    /**
     * Asks for a channel's infos and waits for the answer. The hub handles messages in order and
     * is the only publisher of events, so every event caused by earlier messages has arrived by then.
     */
    async infos(channel: string): Promise<SemInfo> {
      const topic = `coordinosaur/${channel}/infos/reply`;
      const before = on(topic).length;
      await client.publishAsync(`coordinosaur/${channel}/infos`, '', { qos: 0 });
      const payload = await waitFor(`reply on ${topic}`, () => on(topic)[before]);
      return SemInfo.parse(JSON.parse(payload));
    },
  };
}
export type CoordinosaurClient = Awaited<ReturnType<typeof coordinosaurClient>>;

export const uids = (list: { uid: string }[]) => list.map((j) => j.uid);

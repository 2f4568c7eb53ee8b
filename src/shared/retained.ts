import type { MqttClient } from 'mqtt';
import { syncTopic } from './topics.js';

/** Retained messages still arriving this recently mean there may be more. */
const QUIET_MS = 100;
const MAX_SETTLE_MS = 2000;
const MARKER_TIMEOUT_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Reads the retained messages on `filters` (subscribing, then unsubscribing again): resolves once
 * they have all arrived. They come
 * after the SUBACK; a round trip through a topic of our own marks their end on mosquitto, but
 * aedes streams them and a later publish can overtake, so after the marker we also wait until
 * none has arrived for QUIET_MS.
 */
export async function readRetained(client: MqttClient, filters: string[], onMessage: (topic: string, payload: Buffer, retained: boolean) => void): Promise<void> {
  const marker = syncTopic(String(client.options.clientId));
  let last = Date.now();
  let markerSeen: () => void = () => undefined;
  const listener = (topic: string, payload: Buffer, packet: { retain: boolean }) => {
    if (topic === marker) return markerSeen();
    last = Date.now();
    onMessage(topic, payload, packet.retain);
  };
  client.on('message', listener);
  try {
    await client.subscribeAsync(filters, { qos: 1 });
    await client.subscribeAsync(marker);
    // A broker that drops the marker (an ACL without pushfleet/sync/+) must not hang the reader.
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve, reject) => {
      markerSeen = resolve;
      timer = setTimeout(() => reject(new Error(`the broker did not deliver ${marker} back within ${MARKER_TIMEOUT_MS / 1000} s: does its ACL let this client publish and read pushfleet/sync/+?`)), MARKER_TIMEOUT_MS);
      void client.publishAsync(marker, 'done');
    }).finally(() => clearTimeout(timer));
    const deadline = Date.now() + MAX_SETTLE_MS;
    while (Date.now() - last < QUIET_MS && Date.now() < deadline) await sleep(QUIET_MS - (Date.now() - last));
  } finally {
    client.off('message', listener);
  }
  await client.unsubscribeAsync([...filters, marker]);
}

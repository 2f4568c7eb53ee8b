import type { MqttClient } from 'mqtt';
import { ROOT } from '../shared/topics.js';

/**
 * Subscribes to `filters` and resolves once their retained messages have all arrived: they come
 * right after the SUBACK, so a round trip through a topic of our own marks their end.
 */
export async function readRetained(client: MqttClient, filters: string[], onMessage: (topic: string, payload: Buffer) => void): Promise<void> {
  const marker = `${ROOT}/cli/${client.options.clientId}`;
  const listener = (topic: string, payload: Buffer) => {
    if (topic !== marker) onMessage(topic, payload);
  };
  client.on('message', listener);
  await client.subscribeAsync(filters, { qos: 1 });
  await client.subscribeAsync(marker);
  await new Promise<void>((resolve) => {
    client.on('message', (topic) => topic === marker && resolve());
    void client.publishAsync(marker, 'done');
  });
  client.off('message', listener);
  await client.unsubscribeAsync(marker);
}

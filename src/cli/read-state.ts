import type { MqttClient } from 'mqtt';
import { readRetained } from '../shared/retained.js';
import { CommandError } from './process-lifecycle.js';

/** Reads the retained messages on `filters` for a command, then closes the client; a broker that does not answer fails it with one line. */
export async function readStateThenClose(client: MqttClient, filters: string[], onMessage: (topic: string, payload: Buffer) => void): Promise<void> {
  try {
    await readRetained(client, filters, onMessage);
  } catch (err) {
    throw new CommandError((err as Error).message);
  } finally {
    await client.endAsync(true);
  }
}

import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { StoredPacket } from './broker-store.js';

/** What the SQLite persistence takes from aedes-persistence (CommonJS; these parts come untyped). */
export type ClientRef = { id: string };
export type Sub = { clientId: string; topic: string; qos: number };
export type SubRecord = Record<string, unknown> & { topic: string; qos: number };

/** The part of aedes-persistence's in-memory implementation used here as the read index. */
type MemoryIndex = {
  setup(broker: unknown): Promise<void>;
  addSubscriptions(client: ClientRef, subs: SubRecord[]): Promise<void>;
  removeSubscriptions(client: ClientRef, topics: string[]): Promise<void>;
  subscriptionsByClient(client: ClientRef): Promise<SubRecord[]>;
  countOffline(): Promise<{ subsCount: number; clientsCount: number }>;
  subscriptionsByTopic(topic: string): Promise<Sub[]>;
  cleanSubscriptions(client: ClientRef): Promise<void>;
  incomingStorePacket(client: ClientRef, packet: StoredPacket): Promise<void>;
  incomingGetPacket(client: ClientRef, packet: StoredPacket): Promise<StoredPacket>;
  incomingDelPacket(client: ClientRef, packet: StoredPacket): Promise<void>;
  cleanIncoming(client: ClientRef): Promise<void>;
  getClientList(topic: string): Readable;
  destroy(): Promise<void>;
};
type PacketClass = new (original: object, broker?: object) => StoredPacket;

const require = createRequire(import.meta.url);
export const MemoryPersistence = require('aedes-persistence/asyncPersistence.js') as new () => MemoryIndex;
export const { Packet } = require('aedes-persistence') as { Packet: PacketClass };

/** The fields worth keeping (aedes' packets carry callbacks and wire lengths besides). */
export function stored(packet: StoredPacket): StoredPacket {
  const out: StoredPacket = {};
  for (const key of ['cmd', 'topic', 'payload', 'qos', 'retain', 'dup', 'brokerId', 'brokerCounter', 'messageId', 'clientId', 'nl', 'properties', 'messageExpiry']) {
    if (packet[key] !== undefined) out[key] = packet[key];
  }
  return out;
}

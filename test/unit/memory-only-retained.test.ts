import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerStore, type StoredPacket } from '../../src/hub/broker/broker-store.js';
import { SqlitePersistence } from '../../src/hub/broker/sqlite-persistence.js';
import { Cleanup } from '../support/cleanup.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const turn = () => new Promise((r) => setImmediate(r));
const packet = (topic: string, payload: string): StoredPacket => ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: true, dup: false });
const isGo = (topic: string) => topic.includes('/go/');

/** A broker persistence on a state dir, and a second connection that reads what is committed. */
async function open(dir: string, memoryOnlyRetained?: (topic: string) => boolean) {
  const persistence = new SqlitePersistence(BrokerStore.open(dir), { memoryOnlyRetained });
  await persistence.setup({ id: 'broker' });
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= persistence.destroy());
  cleanup.defer(close);
  const reader = new Database(join(dir, 'hub.sqlite'), { readonly: true });
  cleanup.defer(() => reader.close());
  const onDisk = () => reader.prepare<[], { topic: string }>('SELECT topic FROM broker_retained ORDER BY topic').all().map((r) => r.topic);
  const shown = async (pattern: string) => {
    const topics: string[] = [];
    for await (const p of persistence.createRetainedStream(pattern) as AsyncIterable<StoredPacket>) topics.push(p.topic!);
    return topics;
  };
  return { persistence, onDisk, shown, close };
}

describe('SqlitePersistence memoryOnlyRetained', () => {
  it('shows such a retained message without writing it, writes the others, and drops rows an earlier run left', async () => {
    const dir = cleanup.tempDir('pushfleet-memory-retained-');
    // An earlier run that still wrote every retained message.
    const before = await open(dir);
    await before.persistence.storeRetained(packet('c/ch/go/u1', 'u1'));
    await before.persistence.storeRetained(packet('a/1/status', 'online'));
    await turn();
    expect(before.onDisk()).toEqual(['a/1/status', 'c/ch/go/u1']);
    await before.close();

    const { persistence, onDisk, shown } = await open(dir, isGo);
    await turn();
    expect(onDisk()).toEqual(['a/1/status']);
    expect(await shown('#')).toEqual(['a/1/status']);
    await persistence.storeRetained(packet('c/ch/go/u2', 'u2'));
    await persistence.storeRetained(packet('a/2/status', 'online'));
    await turn();
    expect(await shown('#')).toEqual(['a/1/status', 'a/2/status', 'c/ch/go/u2']);
    expect(onDisk()).toEqual(['a/1/status', 'a/2/status']);
    // An empty payload clears it, in memory as well.
    await persistence.storeRetained(packet('c/ch/go/u2', ''));
    expect(await shown('c/#')).toEqual([]);
  });
});

import { Aedes } from 'aedes';
import { afterEach, describe, expect, it } from 'vitest';
import { InProcessInbox, type AedesRouter } from '../../src/hub/broker/in-process-inbox.js';

type Got = { topic: string; payload: string; retain: boolean };

const brokers: Aedes[] = [];
afterEach(async () => {
  for (const b of brokers.splice(0)) await new Promise<void>((resolve) => b.close(() => resolve()));
});

async function setUp() {
  const aedes = await Aedes.createBroker();
  brokers.push(aedes);
  const inbox = new InProcessInbox(aedes as unknown as AedesRouter);
  const got: Got[] = [];
  inbox.on('message', (topic: string, payload: Buffer, packet: { retain: boolean }) => got.push({ topic, payload: payload.toString(), retain: packet.retain }));
  const publish = (topic: string, payload: string, retain = false) =>
    new Promise<void>((resolve, reject) => aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain, dup: false }, (err) => (err ? reject(err) : resolve())));
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  return { aedes, inbox, got, publish, settle };
}

describe('InProcessInbox', () => {
  it("hands over a filter's retained messages once subscribed (retain set), then live ones in order (retain clear)", async () => {
    const { inbox, got, publish, settle } = await setUp();
    await publish('a/1/status', 'kept', true);
    await publish('b/1', 'other', true);
    await inbox.subscribeAsync(['a/+/status'], { qos: 1 });
    await settle();
    expect(got).toEqual([{ topic: 'a/1/status', payload: 'kept', retain: true }]);
    await publish('a/2/status', 'first', true);
    await publish('a/3/status', 'second');
    await publish('b/2', 'not subscribed');
    await settle();
    expect(got.slice(1)).toEqual([
      { topic: 'a/2/status', payload: 'first', retain: false },
      { topic: 'a/3/status', payload: 'second', retain: false },
    ]);
  });

  it('keeps $SYS topics from wildcard filters, and stops at unsubscribe', async () => {
    const { aedes, inbox, got, publish, settle } = await setUp();
    await inbox.subscribeAsync(['#'], { qos: 1 });
    await publish('x/y', 'live');
    await new Promise<void>((resolve) => aedes.publish({ cmd: 'publish', topic: `$SYS/${aedes.id}/test`, payload: Buffer.from('sys'), qos: 0, retain: false, dup: false }, () => resolve()));
    await settle();
    expect(got).toEqual([{ topic: 'x/y', payload: 'live', retain: false }]);
    await inbox.unsubscribeAsync(['#']);
    await publish('x/z', 'after');
    await settle();
    expect(got).toHaveLength(1);
    expect(inbox.connected).toBe(true);
  });
});

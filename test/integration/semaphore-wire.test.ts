import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { BROKERS, startTestHub } from '../support/test-hub.js';
import { coordinosaurClient, uids } from '../support/coordinosaur-client.js';

const semaphore = { channels: { 'pair-': { maxConcurrentJobs: 2 }, 'quota-': { maxConcurrentJobs: 10, quotasPerInterval: { 2: { name: 'two-seconds', limit: 1 } } } } };

describe.each(BROKERS)('semaphore engine over %s, raw coordinosaur messages', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function setup() {
    const hub = await startTestHub(cleanup, broker, { engines: { semaphore } });
    return coordinosaurClient(cleanup, hub.mqttUrl);
  }

  it('answers register with go carrying the raw uid, on the prefix style the client used', async () => {
    const c = await setup();
    await c.register('solo', 'job-1');
    expect(await c.seen('coordinosaur/solo/go/job-1')).toBe('job-1');
    await c.publish('coordinosaur/solo/finished', 'job-1');
    await c.register('solo', 'job-2', 60, '/coordinosaur');
    expect(await c.seen('/coordinosaur/solo/go/job-2')).toBe('job-2');
    expect(c.on('coordinosaur/solo/go/job-2')).toEqual([]);
  });

  it('grants in FIFO order up to the channel limit; finished and aborted (raw or JSON-quoted) free slots at once', async () => {
    const c = await setup();
    for (const uid of ['a', 'b', 'c', 'd', 'e']) await c.register('pair-1', uid);
    await c.seen('coordinosaur/pair-1/go/b');
    let info = await c.infos('pair-1');
    expect(uids(info.working)).toEqual(['a', 'b']);
    expect(uids(info.waiting)).toEqual(['c', 'd', 'e']);
    expect(c.on('coordinosaur/pair-1/queued/d').map((p) => JSON.parse(p))).toEqual([{ v: 1, uid: 'd', position: 2, waiting: 2 }]);
    await c.publish('coordinosaur/pair-1/finished', 'a');
    await c.seen('coordinosaur/pair-1/go/c');
    await c.publish('coordinosaur/pair-1/aborted', '"b"');
    await c.seen('coordinosaur/pair-1/go/d');
    info = await c.infos('pair-1');
    expect(uids(info.working)).toEqual(['c', 'd']);
    expect(uids(info.waiting)).toEqual(['e']);
    // The go of a job that ended is cleared with an empty retained message.
    const order = c.messages.filter((m) => m.topic.startsWith('coordinosaur/pair-1/go/')).map((m) => m.payload);
    expect(order).toEqual(['a', 'b', '', 'c', '', 'd']);
  });

  it('answers a duplicate register with an error event and never a second go; an aborted waiter leaves the queue', async () => {
    const c = await setup();
    await c.register('dup', 'a');
    await c.register('dup', 'b');
    await c.register('dup', 'a');
    await c.register('dup', 'b');
    await c.publish('coordinosaur/dup/aborted', 'b');
    await c.register('dup', 'c');
    await c.publish('coordinosaur/dup/finished', 'a');
    await c.seen('coordinosaur/dup/go/c');
    await c.infos('dup');
    expect(c.on('coordinosaur/dup/go/a')).toEqual(['a', '']);
    expect(c.on('coordinosaur/dup/go/b')).toEqual([]);
    expect(c.errors('dup')).toEqual([
      { v: 1, code: 'duplicate-uid', error: expect.stringContaining('"a"'), uid: 'a', topic: 'coordinosaur/dup/register' },
      { v: 1, code: 'duplicate-uid', error: expect.stringContaining('"b"'), uid: 'b', topic: 'coordinosaur/dup/register' },
    ]);
  });

  it('takes the slot back from a job past its timeout, publishes expired, and grants the next; drops waiters past their queueTimeout', async () => {
    const c = await setup();
    await c.register('slow', 'stuck', 1);
    await c.register('slow', 'impatient', 60, 'coordinosaur', { queueTimeout: 0.5 });
    await c.register('slow', 'next', 60);
    expect(JSON.parse(await c.seen('coordinosaur/slow/expired/impatient'))).toMatchObject({ uid: 'impatient', reason: 'queue-timeout' });
    expect(c.on('coordinosaur/slow/expired/stuck')).toEqual([]);
    expect(JSON.parse(await c.seen('coordinosaur/slow/expired/stuck'))).toMatchObject({ uid: 'stuck', reason: 'timeout' });
    expect(await c.seen('coordinosaur/slow/go/next')).toBe('next');
    expect(c.on('coordinosaur/slow/go/impatient')).toEqual([]);
    // A late finished from the expired job is refused, not counted against the new holder.
    await c.publish('coordinosaur/slow/finished', 'stuck');
    expect(uids((await c.infos('slow')).working)).toEqual(['next']);
    expect(c.errors('slow')).toMatchObject([{ code: 'unknown-uid', uid: 'stuck' }]);
  });

  it('answers malformed topics and payloads with error events naming the problem, changing nothing', async () => {
    const c = await setup();
    await c.register('m', 'holder');
    const before = await c.infos('m');
    await c.publish('coordinosaur/m/register', '{"uid": "x", "timeout":');
    await c.publish('coordinosaur/m/register', '{"timeout": 5}');
    await c.publish('coordinosaur/m/register', '{"uid": "x", "timeout": "later"}');
    await c.publish('coordinosaur/m/finished', '');
    await c.publish('coordinosaur/m/concurrency/set', 'many');
    await c.publish('coordinosaur/m/launch', 'holder');
    await c.publish('coordinosaur//register', '{"uid":"x","timeout":1}');
    expect(await c.infos('m')).toEqual(before);
    expect(c.errors('m').map((e) => [e.code, e.error])).toEqual([
      ['bad-json', expect.stringContaining('not valid JSON')],
      ['bad-payload', expect.stringContaining('uid')],
      ['bad-payload', expect.stringContaining('timeout')],
      ['bad-payload', expect.stringContaining('uid')],
      ['bad-payload', expect.stringContaining('whole number')],
      ['unknown-action', expect.stringContaining('"launch"')],
    ]);
    expect(JSON.parse(await c.seen('coordinosaur/error'))).toMatchObject({ code: 'bad-topic', topic: 'coordinosaur//register' });
  });

  it('applies concurrency/set at once, granting waiters when the limit grows', async () => {
    const c = await setup();
    for (const uid of ['a', 'b', 'c']) await c.register('grow', uid);
    await c.seen('coordinosaur/grow/queued/c');
    await c.publish('coordinosaur/grow/concurrency/set', '3');
    await c.seen('coordinosaur/grow/go/c');
    expect((await c.infos('grow')).maxConcurrentJobs).toBe(3);
    await c.publish('/coordinosaur/grow/concurrency/set', '0');
    await c.register('grow', 'd');
    for (const uid of ['a', 'b', 'c']) await c.publish('coordinosaur/grow/finished', uid);
    const info = await c.infos('grow');
    expect([info.maxConcurrentJobs, info.working, uids(info.waiting)]).toEqual([0, [], ['d']]);
  });

  it('holds quota-blocked waiters until the window frees, and reports quotas in infos', async () => {
    const c = await setup();
    await c.register('quota-1', 'first');
    await c.seen('coordinosaur/quota-1/go/first');
    const grantedAt = Date.now();
    await c.register('quota-1', 'second');
    const info = await c.infos('quota-1');
    expect(info.quotas).toEqual([{ seconds: 2, name: 'two-seconds', limit: 1, used: 1, freeAt: expect.any(String) }]);
    expect(uids(info.waiting)).toEqual(['second']);
    await c.seen('coordinosaur/quota-1/go/second');
    const waited = Date.now() - grantedAt;
    expect(waited).toBeGreaterThan(1500);
    expect(waited).toBeLessThan(4000);
  });

  it('answers infos for an idle channel without keeping it', async () => {
    const c = await setup();
    const info = await c.infos('never-used');
    expect(info).toEqual({ v: 1, channel: 'never-used', maxConcurrentJobs: 1, timeoutOffset: 0, working: [], waiting: [], quotas: [] });
    expect(c.errors('never-used')).toEqual([]);
  });
});

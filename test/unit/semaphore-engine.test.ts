import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/hub/engines/engine.js';
import { SemaphoreConfig } from '../../src/hub/engines/semaphore/config.js';
import { SemaphoreEngine } from '../../src/hub/engines/semaphore/semaphore-engine.js';
import { createLogger } from '../../src/shared/logger.js';
import { topicMatches } from '../../src/shared/topic-match.js';

/** The engine over a fake publisher: what it would put on MQTT, without a broker. */
async function engine(config: Record<string, unknown> = {}) {
  const sent: { topic: string; payload: string }[] = [];
  const publisher = { publish: async (topic: string, payload: string) => void sent.push({ topic, payload }) };
  const e = new SemaphoreEngine({ publisher, db: new Database(':memory:'), clock: systemClock, log: createLogger('test', 'silent') }, SemaphoreConfig.parse(config));
  await e.start();
  const send = (topic: string, payload: string | Buffer) => e.handle(topic, Buffer.from(payload));
  const info = () => {
    send('coordinosaur/c/infos', '');
    return JSON.parse(sent.pop()!.payload);
  };
  return { e, sent, send, info };
}

describe('SemaphoreEngine', () => {
  it('subscribes to the prefix with and without the leading slash, not to its own events', async () => {
    const { e } = await engine({ prefix: 'acme/sem' });
    const both = (route: string) => [route, `${route}/+`, `${route}/+/+`, `${route}/+/concurrency/set`];
    expect(e.subscriptions).toEqual([...both('acme/sem'), ...both('/acme/sem')]);
    for (const own of ['acme/sem/c/go/u', 'acme/sem/c/queued/u', 'acme/sem/c/expired/u', '/acme/sem/c/infos/reply']) {
      expect(e.subscriptions.some((f) => topicMatches(f, own)), own).toBe(false);
    }
    for (const input of ['acme/sem/c/register', '/acme/sem/c/concurrency/set', 'acme/sem/c/launch', 'acme/sem/c', 'acme/sem']) {
      expect(e.subscriptions.some((f) => topicMatches(f, input)), input).toBe(true);
    }
    await e.stop();
  });

  it('replies on the prefix style each client used', async () => {
    const { e, sent, send } = await engine({ maxConcurrentJobs: 2 });
    send('coordinosaur/c/register', '{"uid":"a","timeout":5}');
    send('/coordinosaur/c/register', '{"uid":"b","timeout":5}');
    expect(sent).toEqual([
      { topic: 'coordinosaur/c/go/a', payload: 'a' },
      { topic: '/coordinosaur/c/go/b', payload: 'b' },
    ]);
    await e.stop();
  });

  it('answers garbage with error events, never throws, and changes nothing', async () => {
    const { e, sent, send, info } = await engine();
    send('coordinosaur/c/register', '{"uid":"held","timeout":60}');
    const before = info();
    sent.length = 0;
    const garbage: [string, string | Buffer][] = [
      ['coordinosaur/c/register', 'not json'],
      ['coordinosaur/c/register', '{"timeout":1}'],
      ['coordinosaur/c/register', '{"uid":"x","timeout":"soon"}'],
      ['coordinosaur/c/register', 'null'],
      ['coordinosaur/c/register', Buffer.from([0xff, 0xfe, 0x00])],
      ['coordinosaur/c/finished', ''],
      ['coordinosaur/c/aborted', 'nobody'],
      ['coordinosaur/c/concurrency/set', 'lots'],
      ['coordinosaur/c/explode', '{}'],
      ['coordinosaur/c', ''],
      ['coordinosaur', ''],
      ['coordinosaur//register', '{"uid":"x","timeout":1}'],
      ['coordinosaur/c/register', '{"uid":"held","timeout":60}'],
    ];
    for (const [topic, payload] of garbage) expect(() => send(topic, payload)).not.toThrow();
    expect(sent.map((m) => [m.topic, JSON.parse(m.payload).code])).toEqual([
      ['coordinosaur/c/error', 'bad-json'],
      ['coordinosaur/c/error', 'bad-payload'],
      ['coordinosaur/c/error', 'bad-payload'],
      ['coordinosaur/c/error', 'bad-payload'],
      ['coordinosaur/c/error', 'bad-json'],
      ['coordinosaur/c/error', 'bad-payload'],
      ['coordinosaur/c/error', 'unknown-uid'],
      ['coordinosaur/c/error', 'bad-payload'],
      ['coordinosaur/c/error', 'unknown-action'],
      ['coordinosaur/c/error', 'bad-topic'],
      ['coordinosaur/error', 'bad-topic'],
      ['coordinosaur/error', 'bad-topic'],
      ['coordinosaur/c/error', 'duplicate-uid'],
    ]);
    expect(JSON.parse(sent[2]!.payload)).toMatchObject({ uid: 'x', topic: 'coordinosaur/c/register', error: expect.stringContaining('timeout') });
    expect(info()).toEqual(before);
    // Its own events coming back through the wildcard subscription are not answered.
    sent.length = 0;
    for (const t of ['coordinosaur/c/error', 'coordinosaur/c/go/held', 'coordinosaur/c/infos/reply', 'coordinosaur/error']) send(t, '{}');
    expect(sent).toEqual([]);
    await e.stop();
  });
});

import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { HeadStore } from '../../src/hub/engines/heads/head-store.js';
import { TickBatch } from '../../src/hub/tick-batch.js';

describe('HeadStore own echoes', () => {
  const store = () => {
    const db = new Database(':memory:');
    return new HeadStore(db, new TickBatch(db));
  };

  it('recognises the echo of every own publish to one ref, in any order, once each', () => {
    const heads = store();
    const [a, b, c] = ['a', 'b', 'c'].map((x) => Buffer.from(`{"after":"${x}"}`));
    for (const p of [a!, b!, c!]) heads.expectOwn('pushfleet/heads/acme/web/main', p);
    expect(heads.takeOwnEcho('pushfleet/heads/acme/web/main', Buffer.from(b!))).toBe(true);
    expect(heads.takeOwnEcho('pushfleet/heads/acme/web/main', Buffer.from(a!))).toBe(true);
    expect(heads.takeOwnEcho('pushfleet/heads/acme/web/main', Buffer.from(a!))).toBe(false);
    expect(heads.takeOwnEcho('pushfleet/heads/acme/web/other', Buffer.from(c!))).toBe(false);
    expect(heads.takeOwnEcho('pushfleet/heads/acme/web/main', Buffer.from(c!))).toBe(true);
  });

  it('takes a foreign head (another publisher) for what it is', () => {
    const heads = store();
    heads.expectOwn('pushfleet/heads/acme/web/main', Buffer.from('{"own":1}'));
    expect(heads.takeOwnEcho('pushfleet/heads/acme/web/main', Buffer.from('{"forged":1}'))).toBe(false);
  });
});

describe('HeadStore bounds and own heads', () => {
  const store = (max?: number) => {
    const db = new Database(':memory:');
    return new HeadStore(db, new TickBatch(db), max);
  };

  it('keeps at most `max` refs, dropping the one written longest ago on the next start', async () => {
    const db = new Database(':memory:');
    const heads = new HeadStore(db, new TickBatch(db), 3);
    for (const ref of ['a', 'b', 'c', 'd']) await heads.put(`pushfleet/heads/acme/web/${ref}`, Buffer.from(`{"ref":"${ref}"}`));
    await heads.put('pushfleet/heads/acme/web/a', Buffer.from('{"ref":"a2"}'));
    const reopened = new HeadStore(db, new TickBatch(db), 3);
    expect(reopened.list().map((h) => h.topic).sort()).toEqual(['pushfleet/heads/acme/web/a', 'pushfleet/heads/acme/web/c', 'pushfleet/heads/acme/web/d']);
  });

  it('names its newest own head of a topic: the one in flight first, else the stored one, else none', async () => {
    const heads = store();
    const t = 'pushfleet/heads/acme/web/main';
    expect(heads.newestOwn(t).length).toBe(0);
    await heads.put(t, Buffer.from('stored'));
    expect(heads.newestOwn(t).toString()).toBe('stored');
    heads.expectOwn(t, Buffer.from('flying'));
    expect(heads.newestOwn(t).toString()).toBe('flying');
    await heads.put(t, Buffer.from('flying'));
    expect(heads.newestOwn(t).toString()).toBe('flying');
  });
});

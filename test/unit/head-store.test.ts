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

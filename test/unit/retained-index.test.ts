import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type { StoredPacket } from '../../src/hub/broker/broker-store.js';
import { RetainedIndex } from '../../src/hub/broker/retained-index.js';

const require = createRequire(import.meta.url);
const { QlobberTrue } = require('qlobber') as { QlobberTrue: new (o: object) => { add(f: string): void; test(t: string): boolean } };

const packet = (topic: string, body = topic): StoredPacket => ({ cmd: 'publish', topic, payload: Buffer.from(body), qos: 1, retain: true });
const topics = (list: StoredPacket[]) => list.map((p) => p.topic).sort();

describe('retained index', () => {
  it('matches exact topics, + as one level and # as zero or more, the way aedes matches live messages', () => {
    const index = new RetainedIndex();
    const all = ['a', 'a/b', 'a/b/c', 'a/x/c', 'a/', 'b/b', 'pushfleet/heads/acme/web/refs%2Fheads%2Fmain', 'pushfleet/agents/a1/pins/web', 'pushfleet/agents/a2/pins/web', 'pushfleet/agents/a1/status'];
    for (const t of all) index.set(t, packet(t));
    expect(topics(index.match('a/b'))).toEqual(['a/b']);
    expect(topics(index.match('a/#'))).toEqual(['a', 'a/', 'a/b', 'a/b/c', 'a/x/c']);
    expect(topics(index.match('a/+'))).toEqual(['a/', 'a/b']);
    expect(topics(index.match('a/+/c'))).toEqual(['a/b/c', 'a/x/c']);
    expect(topics(index.match('+/b'))).toEqual(['a/b', 'b/b']);
    expect(topics(index.match('#'))).toEqual([...all].sort());
    expect(topics(index.match('pushfleet/agents/a1/pins/+'))).toEqual(['pushfleet/agents/a1/pins/web']);
    expect(topics(index.match('pushfleet/heads/acme/web/+'))).toEqual(['pushfleet/heads/acme/web/refs%2Fheads%2Fmain']);
    expect(index.match('pushfleet/heads/acme/other/+')).toEqual([]);
    expect(index.size).toBe(all.length);
  });

  it('agrees with qlobber on random topics and filters', () => {
    const words = ['a', 'b', 'c', ''];
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const topic = () => Array.from({ length: 1 + rand(4) }, () => words[rand(words.length)]).join('/');
    const filter = () => {
      const levels = Array.from({ length: 1 + rand(4) }, () => [...words, '+', '+'][rand(words.length + 2)]!);
      if (rand(3) === 0) levels.push('#');
      return levels.join('/');
    };
    const index = new RetainedIndex();
    const stored = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const t = topic();
      index.set(t, packet(t));
      stored.add(t);
    }
    for (let i = 0; i < 300; i++) {
      const f = filter();
      const q = new QlobberTrue({ wildcard_one: '+', wildcard_some: '#', separator: '/' });
      q.add(f);
      expect(topics(index.match(f)), f).toEqual([...stored].filter((t) => q.test(t)).sort());
    }
  });

  it('keeps the newest message per topic, and forgets removed ones with the levels they leave empty', () => {
    const index = new RetainedIndex();
    index.set('x/y/z', packet('x/y/z', 'one'));
    index.set('x/y/z', packet('x/y/z', 'two'));
    index.set('x/y', packet('x/y'));
    expect(index.size).toBe(2);
    expect(index.get('x/y/z')?.payload?.toString()).toBe('two');
    index.set('x/y', undefined);
    expect(index.get('x/y')).toBeUndefined();
    expect(topics(index.match('x/#'))).toEqual(['x/y/z']);
    index.set('x/y/z', undefined);
    index.set('never/there', undefined);
    expect(index.size).toBe(0);
    expect(index.match('#')).toEqual([]);
    // Nothing left behind: the root has no levels.
    expect((index as unknown as { root: { children: Map<string, unknown> } }).root.children.size).toBe(0);
  });
});

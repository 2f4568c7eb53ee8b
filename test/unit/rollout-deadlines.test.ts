import { describe, expect, it } from 'vitest';
import { DeadlineQueue } from '../../src/hub/engines/rollouts/deadlines.js';

describe('DeadlineQueue', () => {
  it('gives the earliest deadline and takes out the due keys, earliest first', () => {
    const q = new DeadlineQueue<string>();
    q.set('c', 300);
    q.set('a', 100);
    q.set('b', 200);
    expect(q.next()).toBe(100);
    expect(q.due(99)).toEqual([]);
    expect(q.due(250)).toEqual(['a', 'b']);
    expect(q.next()).toBe(300);
    expect(q.size).toBe(1);
  });

  it('moves and clears deadlines: an old entry never fires', () => {
    const q = new DeadlineQueue<string>();
    q.set('a', 100);
    q.set('b', 150);
    q.set('a', 500);
    q.set('b', null);
    expect(q.next()).toBe(500);
    expect(q.due(400)).toEqual([]);
    q.set('b', 150);
    expect(q.due(1000)).toEqual(['b', 'a']);
    expect(q.next()).toBeUndefined();
  });

  it('a key cleared and set again to the same time fires once', () => {
    const q = new DeadlineQueue<string>();
    q.set('a', 100);
    q.set('a', null);
    q.set('a', 100);
    expect(q.due(100)).toEqual(['a']);
    expect(q.due(100)).toEqual([]);
  });

  it('stays in order through many moves (heap rebuilt past its stale entries)', () => {
    const q = new DeadlineQueue<number>();
    const want = new Map<number, number>();
    let seed = 7;
    const rand = () => (seed = (seed * 48271) % 2147483647) % 10_000;
    for (let i = 0; i < 5000; i++) {
      const key = rand() % 300;
      const at = rand() % 7 === 0 ? null : rand();
      q.set(key, at);
      if (at === null) want.delete(key);
      else want.set(key, at);
    }
    const order = [...want].sort((a, b) => a[1] - b[1]);
    expect(q.size).toBe(want.size);
    const fired: number[] = [];
    for (let t = 0; t <= 10_000; t += 500) fired.push(...q.due(t));
    expect(new Set(fired)).toEqual(new Set(order.map(([k]) => k)));
    expect(fired.map((k) => want.get(k)!)).toEqual([...fired.map((k) => want.get(k)!)].sort((a, b) => a - b));
  });
});

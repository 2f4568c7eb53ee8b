import { describe, expect, it } from 'vitest';
import { StreamTickets } from '../../src/hub/api/stream-tickets.js';

const viewer = { name: 'ci-bot', role: 'viewer' as const };

describe('stream tickets', () => {
  const tickets = (max = 10) => {
    let now = 1_000_000;
    const store = new StreamTickets({ ttlMs: 30_000, max, now: () => now });
    return { store, advance: (ms: number) => (now += ms) };
  };

  it('are taken once, by the holder they were issued to', () => {
    const { store } = tickets();
    const { ticket, expiresAt } = store.issue(viewer);
    expect(ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(expiresAt).toBe(new Date(1_030_000).toISOString());
    expect(store.redeem(ticket)).toEqual(viewer);
    expect(store.redeem(ticket)).toBeUndefined();
  });

  it('expire after their ttl, and an unknown one opens nothing', () => {
    const { store, advance } = tickets();
    const { ticket } = store.issue(viewer);
    advance(30_000);
    expect(store.redeem(ticket)).toBeUndefined();
    expect(store.redeem('not-a-ticket')).toBeUndefined();
    expect(store.redeem('')).toBeUndefined();
  });

  it('keep at most `max` outstanding, dropping the oldest first', () => {
    const { store } = tickets(3);
    const issued = Array.from({ length: 4 }, (_, i) => store.issue({ name: `u${i}`, role: 'operator' }).ticket);
    expect(store.redeem(issued[0]!)).toBeUndefined();
    expect(issued.slice(1).map((t) => store.redeem(t)?.name)).toEqual(['u1', 'u2', 'u3']);
  });
});

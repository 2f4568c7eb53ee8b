import { describe, expect, it } from 'vitest';
import { LoginThrottle, LogLimit, loginThrottleKey } from '../../src/hub/broker/rate-limits.js';

describe('login throttle', () => {
  it("slows only a generated-password account's own name, and chosen passwords and unknown names by address", () => {
    const t = new LoginThrottle();
    const generated = { alg: 'hmac-sha256' };
    const chosen = { alg: 'scrypt' };
    // One agent behind a NAT with a stale generated password, retrying.
    for (let i = 0; i < 10; i++) t.failed(loginThrottleKey('10.0.0.9', 'stale-agent', generated), 1000);
    expect(t.delayMs(loginThrottleKey('10.0.0.9', 'stale-agent', generated), 1000)).toBeGreaterThan(0);
    expect(t.delayMs(loginThrottleKey('10.0.0.9', 'other-agent', generated), 1000)).toBe(0);
    expect(t.delayMs(loginThrottleKey('10.0.0.9', 'ops', chosen), 1000)).toBe(0);
    // Guesses at a chosen password or at names that do not exist slow the whole address.
    for (let i = 0; i < 3; i++) t.failed(loginThrottleKey('10.0.0.7', i ? `nobody-${i}` : 'ops', i ? undefined : chosen), 1000);
    expect(t.delayMs(loginThrottleKey('10.0.0.7', 'ops', chosen), 1000)).toBeGreaterThan(0);
    expect(t.delayMs(loginThrottleKey('10.0.0.7', 'nobody-9', undefined), 1000)).toBeGreaterThan(0);
  });
  it('lets a few mistakes pass, then doubles the wait per failure up to a ceiling, per address', () => {
    const t = new LoginThrottle();
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      delays.push(t.delayMs('10.0.0.9', 1000));
      t.failed('10.0.0.9', 1000);
    }
    expect(delays).toEqual([0, 0, 0, 250, 500, 1000, 2000, 4000, 8000, 10_000]);
    expect(t.delayMs('10.0.0.8', 1000)).toBe(0);
  });
  it('forgets an address after a success or a quiet spell', () => {
    const t = new LoginThrottle();
    for (let i = 0; i < 5; i++) t.failed('a', 0);
    expect(t.delayMs('a', 0)).toBeGreaterThan(0);
    expect(t.delayMs('a', 600_001)).toBe(0);
    for (let i = 0; i < 5; i++) t.failed('b', 0);
    t.succeeded('b');
    expect(t.delayMs('b', 0)).toBe(0);
  });
  it('holds a bounded number of addresses', () => {
    const t = new LoginThrottle({ free: 0, baseMs: 1, maxMs: 1, forgetMs: 1e9, maxAddresses: 3 });
    for (const a of ['a', 'b', 'c', 'd']) t.failed(a, 0);
    expect(t.delayMs('a', 0)).toBe(0);
    expect(t.delayMs('d', 0)).toBe(1);
  });
});

describe('log limit', () => {
  it('lets one line per key through per interval and counts the ones left out', () => {
    const l = new LogLimit(10_000);
    expect(l.allow('k', 0)).toBe(0);
    expect(l.allow('k', 1)).toBeNull();
    expect(l.allow('k', 2)).toBeNull();
    expect(l.allow('other', 3)).toBe(0);
    expect(l.allow('k', 10_001)).toBe(2);
  });
});

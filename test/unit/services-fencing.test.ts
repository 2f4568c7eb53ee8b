import { describe, expect, it } from 'vitest';
import { Fencing, staleCopies } from '../../src/hub/engines/services/fencing.js';

const settings = { renewMs: 500, leaseMs: 1500, driftMs: 200, heartbeatMissMs: 1500 };

describe('Fencing', () => {
  it('replaces only after the last grant + lease + stop timeout + drift', () => {
    const f = new Fencing(settings);
    f.recordGrant('a', 10_000);
    f.recordGrant('a', 10_500);
    expect(f.safeToReplaceAt('a', 1000)).toBe(10_500 + 1500 + 1000 + 200);
  });

  it('never moves the last grant back (a late or replayed grant cannot shorten the fence)', () => {
    const f = new Fencing(settings);
    f.recordGrant('a', 10_500);
    f.recordGrant('a', 9000);
    expect(f.lastGrant('a')).toBe(10_500);
  });

  it('has nothing to wait for on an agent that was never granted a lease', () => {
    expect(new Fencing(settings).safeToReplaceAt('a', 1000)).toBe(Number.NEGATIVE_INFINITY);
  });

  it('finds agents whose heartbeats are overdue, and when the next one will be', () => {
    const f = new Fencing(settings);
    f.heard('a', 1000);
    f.heard('b', 2000);
    expect(f.nextMissAt()).toBe(2500);
    expect(f.missed(2499)).toEqual([]);
    expect(f.missed(2500)).toEqual(['a']);
    f.forget('a');
    expect(f.missed(5000)).toEqual(['b']);
  });
});

describe('staleCopies', () => {
  it('stops every reported copy that is not the placement the hub holds on that agent', () => {
    const assigned = [{ name: 'web', generation: 4 }];
    const reported = [
      { name: 'web', generation: 4 },
      { name: 'web-old', generation: 1 },
      { name: 'web', generation: 3 },
    ];
    expect(staleCopies(assigned, reported)).toEqual([
      { name: 'web-old', generation: 1 },
      { name: 'web', generation: 3 },
    ]);
  });
});

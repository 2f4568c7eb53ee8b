import { describe, expect, it } from 'vitest';
import { InboundPacer } from '../../src/hub/broker/inbound-pacer.js';

/** A pacer whose turns are run by hand: `nextTurn()` is the loop coming round again. */
function harness(perTurn: number) {
  let deferred: (() => void)[] = [];
  const pacer = new InboundPacer(perTurn, (fn) => deferred.push(fn));
  const nextTurn = () => {
    const now = deferred;
    deferred = [];
    now.forEach((fn) => fn());
  };
  return { pacer, nextTurn, pending: () => deferred.length };
}

describe('InboundPacer', () => {
  it('takes at most perTurn a turn, the rest in arrival order in later turns', () => {
    const h = harness(3);
    const ran: number[] = [];
    for (let i = 0; i < 8; i++) h.pacer.admit(() => ran.push(i));
    expect(ran).toEqual([0, 1, 2]);
    expect(h.pacer.backlog).toBe(5);
    h.nextTurn();
    expect(ran).toEqual([0, 1, 2, 3, 4, 5]);
    h.pacer.admit(() => ran.push(8)); // arrives while others wait: behind them
    h.nextTurn();
    expect(ran).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(h.pacer.backlog).toBe(0);
  });

  it('a quiet turn frees the room again, and an idle pacer schedules nothing', () => {
    const h = harness(2);
    const ran: string[] = [];
    h.pacer.admit(() => ran.push('a'));
    h.pacer.admit(() => ran.push('b'));
    h.nextTurn();
    h.nextTurn();
    expect(h.pending()).toBe(0);
    h.pacer.admit(() => ran.push('c'));
    h.pacer.admit(() => ran.push('d'));
    expect(ran).toEqual(['a', 'b', 'c', 'd']);
  });

  it('one that throws does not strand the ones after it', () => {
    const h = harness(1);
    const ran: number[] = [];
    h.pacer.admit(() => ran.push(0));
    h.pacer.admit(() => {
      throw new Error('boom');
    });
    h.pacer.admit(() => ran.push(2));
    expect(() => h.nextTurn()).toThrow('boom');
    h.nextTurn();
    expect(ran).toEqual([0, 2]);
  });
});

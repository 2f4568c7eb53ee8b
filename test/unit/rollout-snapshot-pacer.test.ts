import { describe, expect, it } from 'vitest';
import { SnapshotPacer } from '../../src/hub/engines/rollouts/snapshot-pacer.js';
import { ManualClock } from '../support/manual-clock.js';

/** A pacer over a manual clock; each publish records the time and the state it saw. */
function pacer(intervalMs = 250, bytesPerSecond = 1_000_000, bytes = 100) {
  const clock = new ManualClock(1000);
  const sent: [number, number][] = [];
  let state = 0;
  const p = new SnapshotPacer(clock, { intervalMs, bytesPerSecond });
  const change = (urgent = false) => {
    state++;
    p.changed('r1', urgent, () => (sent.push([clock.time, state]), bytes));
  };
  return { clock, sent, p, change };
}

describe('SnapshotPacer', () => {
  it('publishes a lone change at once, then at most once per interval with the latest state', () => {
    const { clock, sent, change } = pacer();
    change();
    expect(sent).toEqual([[1000, 1]]);
    for (let i = 0; i < 10; i++) {
      clock.advance(20);
      change();
    }
    expect(sent).toEqual([[1000, 1]]);
    clock.advance(50);
    expect(sent).toEqual([[1000, 1], [1250, 11]]);
    clock.advance(1000);
    expect(sent).toHaveLength(2);
    change();
    expect(sent.at(-1)).toEqual([2250, 12]);
  });

  it('publishes an urgent change (a status) at once, dropping the pending one', () => {
    const { clock, sent, change } = pacer();
    change();
    clock.advance(10);
    change();
    change(true);
    expect(sent).toEqual([[1000, 1], [1010, 3]]);
    clock.advance(1000);
    expect(sent).toHaveLength(2);
  });

  it('waits longer after a large snapshot: its bytes at bytesPerSecond', () => {
    const { clock, sent, change } = pacer(250, 1_000_000, 2_000_000);
    change();
    clock.advance(100);
    change();
    clock.advance(1000);
    expect(sent).toHaveLength(1);
    clock.advance(900);
    expect(sent).toEqual([[1000, 1], [3000, 2]]);
  });

  it('with interval 0 publishes every change', () => {
    const { sent, change } = pacer(0);
    change();
    change();
    change();
    expect(sent.map(([, s]) => s)).toEqual([1, 2, 3]);
  });

  it('flush publishes what is pending; forget drops it', () => {
    const { clock, sent, p, change } = pacer();
    change();
    change();
    p.flush();
    expect(sent).toEqual([[1000, 1], [1000, 2]]);
    clock.advance(10);
    change();
    p.forget('r1');
    clock.advance(1000);
    expect(sent).toHaveLength(2);
  });
});

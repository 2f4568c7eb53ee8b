import { describe, expect, it } from 'vitest';
import type { ServiceServer } from '../../src/hub/engines/services/model.js';
import { choosePlacement, planQueue, type QueueItem } from '../../src/hub/engines/services/placement.js';

const server = (agent: string, maxWorkers: number, extra: Partial<ServiceServer> = {}): ServiceServer => ({
  agent,
  labels: { zone: 'a' },
  actions: { work: { stopTimeoutMs: 1000 } },
  maxWorkers,
  online: true,
  ...extra,
});
const item = (name: string, seq: number, extra: Partial<QueueItem> = {}): QueueItem => ({ name, seq, action: 'work', selector: {}, ...extra });

describe('choosePlacement', () => {
  it('takes the agent with the fewest placements, then the lowest ratio, then the lowest id', () => {
    const servers = [server('b', 4), server('a', 4), server('c', 8)];
    expect(choosePlacement(item('s', 1), servers, new Map([['a', 1], ['b', 1], ['c', 2]]))?.agent).toBe('a');
    expect(choosePlacement(item('s', 1), servers, new Map([['a', 2], ['b', 2], ['c', 2]]))?.agent).toBe('c');
    expect(choosePlacement(item('s', 1), servers, new Map([['a', 1], ['b', 0], ['c', 2]]))?.agent).toBe('b');
  });

  it('skips agents that are offline, full, lack the action, miss a selector label, or are to be avoided', () => {
    const servers = [
      server('off', 4, { online: false }),
      server('full', 1),
      server('other', 4, { actions: { else: { stopTimeoutMs: 1 } } }),
      server('zone-b', 4, { labels: { zone: 'b' } }),
      server('avoided', 4),
      server('ok', 4),
    ];
    const load = new Map([['full', 1], ['ok', 3]]);
    expect(choosePlacement(item('s', 1, { selector: { zone: 'a' }, avoid: 'avoided' }), servers, load)?.agent).toBe('ok');
    expect(choosePlacement(item('s', 1, { selector: { zone: 'a' }, avoid: 'avoided' }), servers, new Map([...load, ['ok', 4]]))).toBeUndefined();
  });
});

describe('planQueue', () => {
  it('places in creation order up to maxWorkers, leaving the rest queued', () => {
    const plan = planQueue([item('third', 3), item('first', 1), item('second', 2)], [server('a', 1), server('b', 1)], new Map());
    expect(plan).toEqual([
      { name: 'first', agent: 'a' },
      { name: 'second', agent: 'b' },
    ]);
  });

  it('counts copies that may still run against their agent', () => {
    expect(planQueue([item('s', 1)], [server('a', 2)], new Map([['a', 2]]))).toEqual([]);
  });

  it('does not let an earlier service that fits nowhere block later ones that fit', () => {
    const plan = planQueue([item('nowhere', 1, { selector: { gpu: 'yes' } }), item('later', 2)], [server('a', 1)], new Map());
    expect(plan).toEqual([{ name: 'later', agent: 'a' }]);
  });

  it('spreads a burst over the agents', () => {
    const queue = Array.from({ length: 9 }, (_, i) => item(`s${i}`, i));
    const plan = planQueue(queue, [server('a', 3), server('b', 3), server('c', 3)], new Map());
    const per = new Map<string, number>();
    for (const p of plan) per.set(p.agent, (per.get(p.agent) ?? 0) + 1);
    expect([...per.values()]).toEqual([3, 3, 3]);
  });
});

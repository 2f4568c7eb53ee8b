import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { assertNoOverlap, liveCopies, readCopies } from '../support/overlap.js';
import { startServicesFleet } from '../support/services-fleet.js';
import { waitFor } from '../support/wait.js';

// Issue 13: an agent cut off from the broker (its traffic held at a TCP proxy, as a partition
// holds it: nothing passes, nothing closes) stops its copies when the lease it can no longer renew
// runs out, before the hub places them elsewhere; when the link heals, the late grants and
// renewals it held arrive and its stale copies do not come back.
describe('services: one agent cut off from the broker, then restored', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('never runs two copies; the cut agent stops by its lease, the services run elsewhere, and stale copies stay stopped', async () => {
    const fleet = await startServicesFleet(cleanup, { agents: [{ id: 'a1', maxWorkers: 4, proxied: true }, { id: 'a2', maxWorkers: 4 }] });
    const names = ['p1', 'p2', 'p3', 'p4'];
    for (const n of names) await fleet.add(n);
    const before = new Map((await fleet.waitRunning(names)).map((v) => [v.name, v]));
    const cutOff = names.filter((n) => before.get(n)!.current!.agent === 'a1');
    expect(cutOff.length).toBe(2);
    await waitFor('every copy ticking', () => names.every((n) => liveCopies(fleet.records).some((c) => c.name === n)));

    const proxy = fleet.proxies.get('a1')!;
    proxy.cut();
    const cutAt = process.hrtime.bigint();
    const after = await fleet.waitRunning(cutOff, (agent, v) => agent === 'a2' && v.generation > before.get(v.name)!.generation);
    // The cut agent stopped its copies itself (SIGTERM from its lease running out: a `stop` record), not killed.
    const stale = readCopies(fleet.records).filter((c) => c.agent === 'a1');
    expect(stale.map((c) => [c.name, c.ended]).sort()).toEqual(cutOff.map((n) => [n, 'stop']).sort());
    for (const c of stale) expect(c.endNs).toBeGreaterThan(cutAt);
    await waitFor('the moved services ticking on a2', () => after.every((v) => liveCopies(fleet.records).some((c) => c.name === v.name && c.generation === v.generation && c.agent === 'a2')));
    for (const v of after) expect(v.history[0]).toMatchObject({ agent: 'a1', generation: before.get(v.name)!.generation });

    // Heal the link: what was held is delivered late; the agent comes back with stale tokens.
    proxy.restore();
    const restoredAt = process.hrtime.bigint();
    await waitFor('a1 online again', () => fleet.request({ op: 'servers', page: { offset: 0, limit: 50 } }).then((r) => r.servers?.items.some((s) => s.agent === 'a1' && s.online)), 20_000);
    // A new service goes to the now empty a1: the agent is usable again, and only for new placements.
    await fleet.add('p5');
    const [fresh] = await fleet.waitRunning(['p5'], (agent) => agent === 'a1');
    await waitFor('p5 ticking on a1', () => liveCopies(fleet.records).some((c) => c.name === 'p5' && c.agent === 'a1'));
    await new Promise((r) => setTimeout(r, 1_500));
    const restartedOnA1 = readCopies(fleet.records).filter((c) => c.agent === 'a1' && c.startNs > restoredAt);
    expect(restartedOnA1.map((c) => [c.name, c.generation])).toEqual([['p5', fresh!.generation]]);
    for (const n of names) expect(fleet.view(n)).toMatchObject({ status: 'running', current: { agent: before.get(n)!.current!.agent === 'a1' ? 'a2' : before.get(n)!.current!.agent } });
    assertNoOverlap(fleet.records);
  }, 60_000);
});

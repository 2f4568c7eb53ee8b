import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { assertNoOverlap, liveCopies } from '../support/overlap.js';
import { SERVICE_STORES, startServicesFleet, storeEngine } from '../support/services-fleet.js';
import { waitFor } from '../support/wait.js';

// Issue 13: an agent killed with kill -9 loses its services, which come back on the other
// agents; its copies die with it (the supervisor's guard), and no two copies of a service ever
// run at once (the fixture's records, checked by test/support/overlap.ts). On both stores.
describe.each(SERVICE_STORES)('services on $name: an agent killed with kill -9', (store) => {
  const cleanup = new Cleanup();
  const storeConfig = storeEngine(store);
  afterEach(() => cleanup.run());

  it('its services come back on the other agents, never two copies at once', async () => {
    const engine = await storeConfig();
    const fleet = await startServicesFleet(cleanup, { agents: [{ id: 'a1', maxWorkers: 3 }, { id: 'a2', maxWorkers: 3 }, { id: 'a3', maxWorkers: 3 }], engine });
    const names = ['s1', 's2', 's3', 's4', 's5', 's6'];
    for (const n of names) await fleet.add(n);
    const placed = await fleet.waitRunning(names);
    // Least-loaded placement spreads six services two by two.
    const perAgent = new Map<string, string[]>();
    for (const v of placed) perAgent.set(v.current!.agent, [...(perAgent.get(v.current!.agent) ?? []), v.name]);
    expect([...perAgent.values()].map((l) => l.length)).toEqual([2, 2, 2]);
    await waitFor('a copy of each service ticking', () => names.every((n) => liveCopies(fleet.records).some((c) => c.name === n)));

    // What runs where at the kill (a loaded machine can have moved one since it was placed).
    const before = new Map(names.map((n) => [n, fleet.view(n)!]));
    const victim = before.get('s1')!.current!.agent;
    const moved = names.filter((n) => before.get(n)!.current!.agent === victim);
    await fleet.agents.get(victim)!.stop('SIGKILL');
    // Its copies die with it (the guard beside each copy), long before a lease could run out for the hub.
    await waitFor(`the copies on ${victim} gone`, () => !liveCopies(fleet.records).some((c) => c.agent === victim), 5_000);

    const after = await fleet.waitRunning(moved, (agent, v) => agent !== victim && v.generation > before.get(v.name)!.generation);
    for (const v of after) {
      const lost = v.history.find((p) => p.agent === victim && p.generation === before.get(v.name)!.generation);
      expect(lost?.endReason, `${JSON.stringify(v)}\n${fleet.explain()}`).toMatch(/agent lost/);
    }
    await waitFor('the moved services ticking on their new agents', () => after.every((v) => liveCopies(fleet.records).some((c) => c.name === v.name && c.generation === v.generation && c.agent === v.current!.agent)));
    // The others never moved.
    for (const n of names.filter((n) => !moved.includes(n))) expect(fleet.view(n)).toMatchObject({ status: 'running', generation: before.get(n)!.generation });
    const copies = assertNoOverlap(fleet.records);
    // Nothing of the moved services ran on the victim after it was killed.
    for (const n of moved) expect(copies.filter((c) => c.name === n).at(-1)!.agent).toBe(after.find((v) => v.name === n)!.current!.agent);
  }, 60_000);
});

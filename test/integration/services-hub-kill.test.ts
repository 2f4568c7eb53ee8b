import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { assertNoOverlap, liveCopies } from '../support/overlap.js';
import { SERVICE_STORES, startServicesFleet, storeEngine } from '../support/services-fleet.js';
import { waitFor } from '../support/wait.js';

// Issue 13: the hub killed with kill -9 (its embedded broker with it) and started again on the
// same state: the view is consistent (every service, its generation and history), each service
// runs again, and nothing is started twice. On both stores.
describe.each(SERVICE_STORES)('services on $name: the hub killed with kill -9 and started again', (store) => {
  const cleanup = new Cleanup();
  const storeConfig = storeEngine(store);
  afterEach(() => cleanup.run());

  it('keeps every service and its generations, runs each once again, never two copies', async () => {
    const engine = await storeConfig();
    const fleet = await startServicesFleet(cleanup, { hubProcess: true, agents: [{ id: 'a1', maxWorkers: 2 }, { id: 'a2', maxWorkers: 2 }], engine });
    const names = ['h1', 'h2', 'h3', 'h4', 'h5'];
    for (const n of names) await fleet.add(n);
    const before = new Map((await fleet.waitRunning(names.slice(0, 4))).map((v) => [v.name, v]));
    await fleet.waitForView('h5', 'queued', (v) => v.status === 'queued');
    await waitFor('every placed copy ticking', () => names.slice(0, 4).every((n) => liveCopies(fleet.records).some((c) => c.name === n)));

    await fleet.hubProcess!.kill();
    // No hub, no grants: every copy stops when its lease runs out.
    await waitFor('every copy stopped by its lease', () => liveCopies(fleet.records).length === 0, 10_000);
    await fleet.hubProcess!.start();

    // Asked of the restarted hub itself (the retained views may still be the old hub's).
    const ls = () => fleet.request({ op: 'ls', page: { offset: 0, limit: 50 } }).then((r) => r.services?.items, () => undefined);
    const after = await waitFor(() => `the restarted hub showing h1-h4 running\n${fleet.explain()}`, async () => {
      const items = await ls();
      return items?.filter((v) => v.status === 'running').length === 4 ? items : undefined;
    }, 30_000);
    expect(after.map((v) => [v.name, v.status])).toEqual([...names.slice(0, 4).map((n) => [n, 'running']), ['h5', 'queued']]);
    for (const v of after) expect(v.generation).toBeGreaterThanOrEqual(before.get(v.name)?.generation ?? 0);
    await waitFor(() => `each service ticking once again\n${fleet.explain()}`, () => names.slice(0, 4).every((n) => liveCopies(fleet.records).filter((c) => c.name === n).length === 1), 10_000);
    const copies = assertNoOverlap(fleet.records);
    // Started again once each: two copies per placed service over the whole test, none of h5.
    for (const n of names.slice(0, 4)) expect(copies.filter((c) => c.name === n).length).toBe(2);
    expect(copies.some((c) => c.name === 'h5')).toBe(false);
  }, 90_000);
});

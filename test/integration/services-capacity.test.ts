import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { assertNoOverlap, liveCopies, mostAtOnce, readCopies } from '../support/overlap.js';
import { startServicesFleet, type ServicesFleet } from '../support/services-fleet.js';
import { waitFor } from '../support/wait.js';

/** A request to the hub's REST API as the fleet's operator (HTTP Basic, the operator's broker login). */
async function rest(fleet: ServicesFleet, path: string, method = 'GET'): Promise<{ status: number; body: any }> {
  const login = new URL(fleet.operatorUrl);
  const auth = Buffer.from(`${decodeURIComponent(login.username)}:${decodeURIComponent(login.password)}`).toString('base64');
  const res = await fetch(`${fleet.httpBase}${path}`, { method, headers: { authorization: `Basic ${auth}` } });
  return { status: res.status, body: await res.json() };
}

// Issue 13: never more than maxWorkers on one agent; what fits nowhere waits in a queue and is
// placed, in creation order, as soon as capacity appears; cancel works queued and running
// (SIGTERM, then SIGKILL after the agent's services.stopTimeout). Driven through the CLI, REST and MQTT requests.
describe('services: capacity, the queue and cancel', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('fills maxWorkers, queues the rest in creation order, and places them as capacity appears', async () => {
    const fleet = await startServicesFleet(cleanup, { agents: [{ id: 'a1', maxWorkers: 2 }, { id: 'a2', maxWorkers: 1, deferred: true }] });
    const added = await fleet.cli(['add', 'q1', '--action', 'svc', '--json']);
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ name: 'q1', action: 'svc' });
    for (const n of ['q2', 'q3', 'q4']) await fleet.add(n);
    await fleet.waitRunning(['q1', 'q2'], (agent) => agent === 'a1');
    const queued = await rest(fleet, '/api/v1/services?status=queued');
    expect(queued.status).toBe(200);
    expect(queued.body.items.map((v: { name: string }) => v.name)).toEqual(['q3', 'q4']);
    const shown = await fleet.cli(['show', 'q3', '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ name: 'q3', status: 'queued' });

    // A slot frees on a1: the older of the queued takes it.
    expect((await fleet.cli(['rm', 'q1'])).code).toBe(0);
    await fleet.waitRunning(['q3'], (agent) => agent === 'a1');
    expect(fleet.view('q4')!.status).toBe('queued');
    // A new agent comes up: q4 goes there.
    await fleet.startAgent('a2');
    await fleet.waitRunning(['q4'], (agent) => agent === 'a2');
    await waitFor('q4 ticking on a2', () => liveCopies(fleet.records).some((c) => c.name === 'q4' && c.agent === 'a2'));

    const listed = await fleet.cli(['ls', '--json']);
    expect(JSON.parse(listed.stdout).items.map((v: { name: string; status: string }) => [v.name, v.status])).toEqual([
      ['q2', 'running'],
      ['q3', 'running'],
      ['q4', 'running'],
    ]);
    const copies = assertNoOverlap(fleet.records);
    expect(mostAtOnce(copies, 'a1')).toBe(2);
    expect(mostAtOnce(copies, 'a2')).toBe(1);
    // q1 and q2 start side by side (two processes race to write their first record); q3 and q4 only once a slot is there for each.
    const started = copies.map((c) => c.name);
    expect([started.slice(0, 2).sort(), started.slice(2)]).toEqual([['q1', 'q2'], ['q3', 'q4']]);
  }, 60_000);

  it('cancels a queued service before it ever starts, and a running one with SIGTERM then SIGKILL after stopTimeout', async () => {
    const fleet = await startServicesFleet(cleanup, { agents: [{ id: 'a1', maxWorkers: 1 }], stopTimeout: 1 });
    await fleet.add('stubborn', 'stubborn');
    await fleet.waitRunning(['stubborn']);
    await waitFor('the stubborn copy ticking', () => liveCopies(fleet.records).some((c) => c.name === 'stubborn'));
    await fleet.add('waiting');
    await fleet.waitForView('waiting', 'queued', (v) => v.status === 'queued');

    const rmQueued = await rest(fleet, '/api/v1/services/waiting', 'DELETE');
    expect(rmQueued.status).toBe(202);
    await waitFor('waiting removed', async () => (await fleet.request({ op: 'show', name: 'waiting' })).code === 'not-found');

    const rmRunning = await fleet.cli(['rm', 'stubborn', '--json']);
    expect(rmRunning.code, rmRunning.stderr).toBe(0);
    await waitFor('stubborn removed', async () => (await fleet.request({ op: 'show', name: 'stubborn' })).code === 'not-found', 15_000);
    await waitFor('the stubborn copy gone', () => !liveCopies(fleet.records).some((c) => c.name === 'stubborn'), 5_000);
    const [copy, ...others] = readCopies(fleet.records);
    expect(others).toEqual([]); // `waiting` never started, not even once its slot freed
    // It got SIGTERM (and ignored it), then SIGKILL no sooner than stopTimeout (1 s) later: it ticked on in between.
    expect(copy!.events).toContain('term');
    expect(copy!.ended).toBe('killed');
    expect(Number(copy!.endNs - copy!.termNs!) / 1e6).toBeGreaterThan(800);
  }, 60_000);
});

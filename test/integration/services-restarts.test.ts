import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { assertNoOverlap, liveCopies, readCopies } from '../support/overlap.js';
import { startServicesFleet } from '../support/services-fleet.js';
import { waitFor } from '../support/wait.js';

const ms = (ns: bigint) => Number(ns) / 1e6;

// Issue 13: a copy whose process exits is restarted on the same agent with exponential backoff;
// after repeated crashes it is marked failing and moved to another agent, with the history kept
// (Nomad's restart, then reschedule). A copy that stops sending WATCHDOG=1 is restarted.
describe('services: restarts', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('restarts a crashing service on its agent with backoff, then marks it failing and moves it, history kept', async () => {
    const restart = { attempts: 2, delayMs: 300, factor: 2 };
    const fleet = await startServicesFleet(cleanup, { agents: [{ id: 'a1' }, { id: 'a2' }], engine: { restart } });
    // Crashes 200 ms after each start, but only on a1 (where it is placed first: ties go to the lowest id).
    await fleet.add('crashy', 'crash=200 on=a1');
    const [moved] = await fleet.waitRunning(['crashy'], (agent) => agent === 'a2', 30_000);
    await waitFor('crashy ticking on a2', () => liveCopies(fleet.records).some((c) => c.name === 'crashy' && c.agent === 'a2'));

    const copies = assertNoOverlap(fleet.records);
    const onA1 = copies.filter((c) => c.agent === 'a1');
    // The first run and `attempts` restarts, all of one placement (one generation), each a crash.
    expect(onA1.map((c) => c.ended)).toEqual(['crash', 'crash', 'crash']);
    expect(new Set(onA1.map((c) => c.generation)).size).toBe(1);
    // Backoff: delayMs, then delayMs · factor.
    const gaps = onA1.slice(1).map((c, i) => ms(c.startNs - onA1[i]!.endNs));
    expect(gaps[0]).toBeGreaterThanOrEqual(300);
    expect(gaps[1]).toBeGreaterThanOrEqual(600);
    expect(moved!.generation).toBeGreaterThan(onA1[0]!.generation);
    expect(moved!.history[0]).toMatchObject({ agent: 'a1', generation: onA1[0]!.generation, restarts: 2 });
    expect(moved!.history[0]!.endReason).toMatch(/crash loop/);
  }, 60_000);

  it('restarts a copy that stops sending WATCHDOG=1 (watchdogSec) on the same placement, and its history shows the watchdog timeouts', async () => {
    // One restart allowed: the second timeout is a crash loop, which ends the placement into the history.
    const fleet = await startServicesFleet(cleanup, { agents: [{ id: 'a1' }], engine: { restart: { attempts: 1, delayMs: 200, rescheduleDelayMs: 300 } } });
    // Pings at a third of the 2 s watchdog (the first at start), three more, then silence: the agent stops it 2 s later.
    await fleet.add('dog', 'watchdog=3', 'watched');
    const first = (await fleet.waitRunning(['dog']))[0]!;
    const again = await fleet.waitForView('dog', 'restarted on its placement', (v) => v.status === 'running' && v.current?.generation === first.generation && v.current.restarts === 1);
    expect(again.current!.agent).toBe('a1');
    const moved = await fleet.waitForView('dog', 'placed anew after its crash loop', (v) => v.status === 'running' && v.generation > first.generation);
    expect(moved.history[0]).toMatchObject({ agent: 'a1', generation: first.generation, restarts: 1, endReason: 'crash loop: watchdog timeout' });
    await waitFor('the copy of the new placement', () => readCopies(fleet.records).some((c) => c.generation === moved.generation));
    const copies = assertNoOverlap(fleet.records);
    // Each copy of the first placement fell silent and was stopped (SIGTERM: it wrote `stop`); the same placement ran twice.
    const ofFirst = copies.filter((c) => c.generation === first.generation);
    expect(ofFirst.map((c) => [c.agent, c.events.includes('silent'), c.ended])).toEqual([
      ['a1', true, 'stop'],
      ['a1', true, 'stop'],
    ]);
  }, 60_000);
});

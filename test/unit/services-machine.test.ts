import { describe, expect, it } from 'vitest';
import { newService, type Service, type ServiceRequest, type ServiceServer } from '../../src/hub/engines/services/model.js';
import { DEFAULT_RESTART } from '../../src/hub/engines/services/restart-policy.js';
import { ServiceMachine, type MachineSettings, type Result, type ServiceEffect } from '../../src/hub/engines/services/service-machine.js';

/** As the engine creates one: the store gives the stored service (nothing to lift here), then the machine takes it. */
const create = (m: ServiceMachine, req: ServiceRequest, now: number): Result => m.create(newService(req, m.nextSeq(), now), now);

const settings: MachineSettings = { renewMs: 500, leaseMs: 1500, driftMs: 200, heartbeatMissMs: 1500, restart: DEFAULT_RESTART, historyLimit: 20 };
const server = (agent: string, maxWorkers = 2, stopTimeoutMs = 1000): ServiceServer => ({ agent, labels: {}, actions: { work: { stopTimeoutMs } }, maxWorkers, online: true });

const kinds = (r: Result) => r.effects.map((e) => e.kind);
const of = <K extends ServiceEffect['kind']>(r: Result, kind: K) => r.effects.filter((e): e is Extract<ServiceEffect, { kind: K }> => e.kind === kind);
const placed = (m: ServiceMachine, name: string) => m.get(name)?.current;

/** A machine with agents up and renewing at t=0, and one service created. */
function fleet(agents: string[], maxWorkers = 2): ServiceMachine {
  const m = new ServiceMachine(settings, [], 0);
  for (const a of agents) {
    m.serverUp(server(a, maxWorkers), 0);
    m.renewal(a, 0, [], 0);
  }
  return m;
}

describe('ServiceMachine: create and place', () => {
  it('stores the generation before it publishes the placement and the lease', () => {
    const m = fleet(['a']);
    const r = create(m, { name: 'web', action: 'work', arg: 'x' }, 10);
    expect(kinds(r)).toEqual(['save', 'placement', 'lease', 'wake']);
    expect(of(r, 'save')[0]!.service).toMatchObject({ status: 'placed', generation: 1, current: { agent: 'a', generation: 1, restarts: 0, stopTimeoutMs: 1000 } });
    expect(of(r, 'lease')[0]).toEqual({ kind: 'lease', agent: 'a', a0: 0, grantedAt: 10, leaseMs: 1500, renewMs: 500, runs: [{ name: 'web', generation: 1, restarts: 0, action: 'work', arg: 'x' }], stop: [] });
  });

  it('shows each server\'s capacity in use and its services, fenced copies counted', () => {
    const m = fleet(['a', 'b']);
    create(m, { name: 'web', action: 'work' }, 0);
    create(m, { name: 'db', action: 'work' }, 0);
    expect(m.serverList(0).map((s) => [s.agent, s.online, s.used, s.maxWorkers, s.services])).toEqual([
      ['a', true, 1, 2, ['web']],
      ['b', true, 1, 2, ['db']],
    ]);
    m.serverDown('a', 'last will', 10);
    m.serverUp(server('a'), 20);
    // web's old copy may still run on a until its fence passes: it still takes a slot there.
    expect(m.serverList(20).find((s) => s.agent === 'a')).toMatchObject({ online: true, used: 1, services: [] });
  });

  it('refuses a bad or taken name with a clear error and changes nothing', () => {
    const m = fleet(['a']);
    create(m, { name: 'web', action: 'work' }, 0);
    expect(create(m, { name: 'web', action: 'work' }, 1)).toEqual({ error: 'service web exists (placed); remove it first', effects: [] });
    expect(create(m, { name: 'Web_1', action: 'work' }, 1).error).toMatch(/lower-case/);
    expect(m.list().map((s) => s.name)).toEqual(['web']);
  });

  it('queues what fits nowhere and places it in creation order when capacity appears', () => {
    const m = fleet(['a'], 1);
    for (const name of ['one', 'two', 'three']) create(m, { name, action: 'work' }, 0);
    expect(m.list().map((s) => s.status)).toEqual(['placed', 'queued', 'queued']);
    m.serverUp(server('b', 1), 5);
    expect(m.list().map((s) => [s.name, s.status, s.current?.agent])).toEqual([
      ['one', 'placed', 'a'],
      ['two', 'placed', 'b'],
      ['three', 'queued', undefined],
    ]);
  });
});

describe('ServiceMachine: cancel', () => {
  it('forgets a queued service at once', () => {
    const m = fleet([]);
    create(m, { name: 'web', action: 'work' }, 0);
    const r = m.cancel('web', 1);
    expect(of(r, 'save')[0]!.service.status).toBe('cancelled');
    expect(of(r, 'placement')[0]).toMatchObject({ name: 'web', agent: null });
    expect(m.list()).toEqual([]);
  });

  it('stops a running copy and ends when the agent reports it gone, not before', () => {
    const m = fleet(['a']);
    create(m, { name: 'web', action: 'work' }, 0);
    m.report({ agent: 'a', name: 'web', generation: 1, restarts: 0, state: 'running' }, 100);
    const r = m.cancel('web', 200);
    expect(m.get('web')!.status).toBe('stopping');
    expect(of(r, 'lease')[0]!.runs).toEqual([]);
    expect(of(r, 'placement')[0]).toMatchObject({ name: 'web', generation: 1, agent: null });
    m.report({ agent: 'a', name: 'web', generation: 1, restarts: 0, state: 'exited' }, 900);
    expect(m.get('web')).toMatchObject({ status: 'cancelled', current: undefined, history: [{ agent: 'a', endReason: 'cancelled', safeAt: undefined }] });
  });

  it('cancels a service waiting for its restart at once: its last run is known to be gone', () => {
    const m = fleet(['a']);
    create(m, { name: 'web', action: 'work' }, 0);
    m.report({ agent: 'a', name: 'web', generation: 1, restarts: 0, state: 'exited' }, 10);
    const r = m.cancel('web', 20);
    expect(m.get('web')).toMatchObject({ status: 'cancelled', history: [{ endReason: 'cancelled', safeAt: undefined }] });
    expect(of(r, 'lease')[0]!.runs).toEqual([]);
    expect(of(m.tick(5000), 'lease')).toEqual([]);
  });

  it('ends a stopping service whose agent is gone when its lease and stop timeout have run out', () => {
    const m = fleet(['a']);
    create(m, { name: 'web', action: 'work' }, 0);
    m.serverDown('a', 'last will', 50);
    create(m, { name: 'db', action: 'work' }, 60);
    const r = m.cancel('web', 100);
    expect(r.error).toBeUndefined();
    // Already ended by the last will: cancelling the queued service is immediate; its fence stays.
    expect(m.get('web')!.status).toBe('cancelled');
    expect(m.get('web')!.history[0]!.safeAt).toBe(0 + 1500 + 1000 + 200);
  });
});

describe('ServiceMachine: agent loss and fencing', () => {
  it('places a lost agent\'s service elsewhere only after last grant + lease + stop timeout + drift', () => {
    const m = fleet(['a', 'b'], 1);
    create(m, { name: 'web', action: 'work' }, 0);
    expect(placed(m, 'web')?.agent).toBe('a');
    m.renewal('a', 400, [{ name: 'web', generation: 1 }], 500);
    m.renewal('b', 400, [], 500);
    m.serverDown('a', 'last will', 600);
    expect(m.get('web')).toMatchObject({ status: 'queued', history: [{ agent: 'a', endReason: 'agent lost (last will)', safeAt: 500 + 1500 + 1000 + 200 }] });
    m.renewal('b', 2800, [], 2900);
    expect(m.tick(3199).effects.some((e) => e.kind === 'placement' && e.agent === 'b')).toBe(false);
    m.tick(3200);
    expect(placed(m, 'web')).toMatchObject({ agent: 'b', generation: 2 });
  });

  it('treats missed heartbeats like a last will', () => {
    const m = fleet(['a', 'b']);
    create(m, { name: 'web', action: 'work' }, 0);
    for (const t of [500, 1000, 1500, 2000, 2500, 3000]) m.renewal('b', t, [], t);
    m.tick(1500);
    expect(m.get('web')!.history[0]!.endReason).toBe('agent lost (heartbeats missed)');
    m.renewal('b', 2600, [], 2600);
    expect(placed(m, 'web')).toBeUndefined();
    m.tick(2700);
    expect(placed(m, 'web')).toMatchObject({ agent: 'b', generation: 2 });
  });

  it('tells an agent back with a stale generation to stop it at once, and grants it only what it holds now', () => {
    const m = fleet(['a', 'b'], 1);
    create(m, { name: 'web', action: 'work' }, 0);
    m.serverDown('a', 'last will', 100);
    m.renewal('b', 2700, [], 2700);
    expect(placed(m, 'web')?.agent).toBe('b');
    const r = m.renewal('a', 9000, [{ name: 'web', generation: 1 }], 9000);
    expect(of(r, 'lease')[0]).toMatchObject({ agent: 'a', runs: [], stop: [{ name: 'web', generation: 1 }] });
  });

  it('does not move anything on a hub restart while the agents renew, and fences the silent ones from the restart', () => {
    const m = fleet(['a', 'b']);
    create(m, { name: 'web', action: 'work' }, 0);
    create(m, { name: 'db', action: 'work' }, 0);
    const saved = m.list().map((s) => structuredClone(s)) as Service[];
    expect(saved.map((s) => s.current?.agent)).toEqual(['a', 'b']);
    const again = new ServiceMachine(settings, saved, 10_000);
    again.serverUp(server('a'), 10_000);
    again.serverUp(server('b'), 10_000);
    again.renewal('a', 10_100, [{ name: 'web', generation: 1 }], 10_100);
    for (const t of [10_500, 11_000, 11_500]) again.renewal('a', t, [{ name: 'web', generation: 1 }], t);
    again.tick(11_500);
    expect(again.get('web')!.current).toMatchObject({ agent: 'a', generation: 1 });
    // b never renewed: lost at restart + heartbeatMissMs, fenced from the restart (a grant may have left just before the crash).
    expect(again.get('db')!.history[0]).toMatchObject({ agent: 'b', endReason: 'agent lost (heartbeats missed)', safeAt: 10_000 + 1500 + 1000 + 200 });
    again.tick(12_700);
    expect(again.get('db')!.current).toMatchObject({ agent: 'a', generation: 2 });
  });

  it('fences an unconfirmed copy from the restart, whatever the stored fence says', () => {
    const m = fleet(['a']);
    create(m, { name: 'web', action: 'work' }, 0);
    m.serverDown('a', 'last will', 100);
    const saved = m.list().map((s) => structuredClone(s)) as Service[];
    expect(saved[0]!.history[0]!.safeAt).toBe(2700);
    // Restarted "earlier" than the stored fence by a clock step: the fence is re-anchored on this run's clock.
    const again = new ServiceMachine(settings, saved, 1000);
    again.serverUp(server('b'), 1000);
    again.renewal('b', 1000, [], 1000);
    again.tick(3699);
    expect(again.get('web')!.status).toBe('queued');
    again.renewal('b', 3700, [], 3700);
    again.tick(3700);
    expect(again.get('web')!.current).toMatchObject({ agent: 'b', generation: 2 });
  });

  it('keeps the fence of a lost agent\'s copy when a late exit of an earlier run arrives (found by the simulation)', () => {
    const m = fleet(['a', 'b']);
    create(m, { name: 'web', action: 'work' }, 0);
    m.report({ agent: 'a', name: 'web', generation: 1, restarts: 0, state: 'exited' }, 10);
    m.renewal('a', 1010, [], 1010);
    m.renewal('b', 1010, [], 1010);
    m.tick(1010);
    expect(m.get('web')!.current!.restarts).toBe(1);
    m.serverDown('a', 'last will', 1100);
    // a reconnects and publishes its retained status again: the exit of run 0, not of run 1.
    m.report({ agent: 'a', name: 'web', generation: 1, restarts: 0, state: 'exited' }, 1200);
    expect(m.get('web')).toMatchObject({ status: 'queued', history: [{ safeAt: 1010 + 1500 + 1000 + 200 }] });
    m.report({ agent: 'a', name: 'web', generation: 1, restarts: 1, state: 'exited' }, 1300);
    expect(m.get('web')!.current).toMatchObject({ agent: 'b', generation: 2 });
  });

  it('re-creating a cancelled name continues its generations', () => {
    const m = fleet(['a']);
    create(m, { name: 'web', action: 'work' }, 0);
    m.cancel('web', 1);
    m.report({ agent: 'a', name: 'web', generation: 1, restarts: 0, state: 'exited' }, 2);
    create(m, { name: 'web', action: 'work' }, 3);
    expect(placed(m, 'web')?.generation).toBe(2);
  });

  it('places a stored service above the generation the store lifted it to (a name removed at generation 7)', () => {
    const m = fleet(['a']);
    const r = m.create({ ...newService({ name: 'web', action: 'work' }, 1, 0), generation: 7 }, 0);
    expect(of(r, 'placement')[0]).toMatchObject({ name: 'web', generation: 8, agent: 'a' });
  });

  it('keeps fencing a re-created name with the copy its cancelled predecessor may still run', () => {
    const m = fleet(['a', 'b']);
    create(m, { name: 'web', action: 'work' }, 0);
    m.serverDown('a', 'last will', 100);
    // Waiting for a's fence (0 + 1500 + 1000 + 200), then cancelled and created again at once.
    m.cancel('web', 200);
    create(m, { name: 'web', action: 'work' }, 300);
    expect(m.get('web')!.status).toBe('queued');
    expect(placed(m, 'web')).toBeUndefined();
    m.renewal('b', 2600, [], 2600);
    expect(placed(m, 'web')).toBeUndefined();
    m.tick(2700);
    expect(placed(m, 'web')).toMatchObject({ agent: 'b', generation: 2 });
  });
});

describe('ServiceMachine: restarts', () => {
  const exit = (m: ServiceMachine, agent: string, generation: number, restarts: number, now: number) =>
    m.report({ agent, name: 'web', generation, restarts, state: 'exited', reason: 'exit 1' }, now);

  it('restarts on the same agent with backoff, then moves a crash loop to another agent at once', () => {
    const m = fleet(['a', 'b']);
    create(m, { name: 'web', action: 'work' }, 0);
    let t = 100;
    for (let n = 0; n < 3; n++) {
      exit(m, 'a', 1, n, t);
      expect(m.get('web')!.status).toBe('restarting');
      m.renewal('a', t + 999 * 2 ** n, [], t + 999 * 2 ** n);
      expect(of(m.tick(t + 999 * 2 ** n), 'lease')).toEqual([]);
      t += 1000 * 2 ** n;
      m.renewal('a', t, [], t);
      m.renewal('b', t, [], t);
      const again = m.tick(t);
      expect(of(again, 'lease').find((l) => l.agent === 'a')!.runs[0]).toMatchObject({ generation: 1, restarts: n + 1 });
    }
    exit(m, 'a', 1, 3, t + 10);
    expect(m.get('web')).toMatchObject({ status: 'placed', current: { agent: 'b', generation: 2 }, history: [{ agent: 'a', generation: 1, restarts: 3, endReason: 'crash loop: exit 1', safeAt: undefined }] });
  });

  it('waits its backoff before trying the same agent again when no other fits', () => {
    const m = fleet(['a']);
    create(m, { name: 'web', action: 'work' }, 0);
    let t = 0;
    for (let n = 0; n < 3; n++) {
      exit(m, 'a', 1, n, t);
      t += 10_000;
      m.renewal('a', t, [], t);
      m.tick(t);
    }
    exit(m, 'a', 1, 3, t);
    expect(m.get('web')!.status).toBe('failing');
    const retry = t + DEFAULT_RESTART.rescheduleDelayMs;
    m.renewal('a', retry - 1, [], retry - 1);
    m.tick(retry - 1);
    expect(m.get('web')!.status).toBe('failing');
    m.renewal('a', retry, [], retry);
    m.tick(retry);
    expect(placed(m, 'web')).toMatchObject({ agent: 'a', generation: 2 });
  });

  it('moves a service waiting for its restart off a lost agent at once: its last run is known to be gone', () => {
    const m = fleet(['a', 'b']);
    create(m, { name: 'web', action: 'work' }, 0);
    exit(m, 'a', 1, 0, 10);
    m.serverDown('a', 'last will', 20);
    expect(m.get('web')!.current).toMatchObject({ agent: 'b', generation: 2 });
  });

  it('ignores a late exit of an earlier run', () => {
    const m = fleet(['a']);
    create(m, { name: 'web', action: 'work' }, 0);
    exit(m, 'a', 1, 0, 10);
    m.renewal('a', 2000, [], 2000);
    m.tick(2000);
    m.report({ agent: 'a', name: 'web', generation: 1, restarts: 1, state: 'running' }, 2100);
    exit(m, 'a', 1, 0, 2200);
    expect(m.get('web')!.status).toBe('running');
  });

  it('places a refused placement anew (a new generation, its place in the queue kept), not as a crash', () => {
    // After a hub restart the agent has stopped its copy at its lease's end and refuses that generation again.
    const m = fleet(['a'], 1);
    create(m, { name: 'web', action: 'work' }, 0);
    create(m, { name: 'later', action: 'work' }, 0);
    const r = m.report({ agent: 'a', name: 'web', generation: 1, restarts: 0, state: 'refused', reason: 'refused: generation 1 ended here' }, 10);
    expect(m.get('web')).toMatchObject({ status: 'placed', generation: 2, current: { agent: 'a', generation: 2, restarts: 0, exits: [] } });
    expect(m.get('web')!.history[0]).toMatchObject({ generation: 1, endReason: 'refused: generation 1 ended here' });
    expect(m.get('web')!.history[0]!.safeAt).toBeUndefined();
    expect(m.get('later')!.status).toBe('queued');
    expect(of(r, 'placement').map((p) => [p.generation, p.agent])).toEqual([
      [1, null],
      [2, 'a'],
    ]);
  });

  it('keeps a placement refused twice in a row away from that agent for a restart delay', () => {
    // An agent still stopping an old copy refuses every new generation until it is gone.
    const m = fleet(['a', 'b'], 1);
    create(m, { name: 'web', action: 'work' }, 0);
    const first = m.get('web')!.current!.agent;
    m.report({ agent: first, name: 'web', generation: 1, restarts: 0, state: 'refused', reason: 'a copy of web (generation 1) is still running or stopping here' }, 10);
    expect(m.get('web')!.current).toMatchObject({ agent: first, generation: 2 });
    m.report({ agent: first, name: 'web', generation: 2, restarts: 0, state: 'refused', reason: 'a copy of web (generation 1) is still running or stopping here' }, 20);
    const other = first === 'a' ? 'b' : 'a';
    expect(m.get('web')!.current).toMatchObject({ agent: other, generation: 3 });
    expect(m.get('web')!.history.map((p) => p.endReason)).toEqual([
      'refused: a copy of web (generation 1) is still running or stopping here',
      'refused: a copy of web (generation 1) is still running or stopping here',
    ]);
  });
});

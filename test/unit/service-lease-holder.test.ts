import { afterEach, describe, expect, it } from 'vitest';
import { GenerationFile } from '../../agent/services/generation-file.js';
import { LeaseHolder, type Copies } from '../../agent/services/lease-holder.js';
import type { ServiceSpec } from '../../agent/services/service-supervisor.js';
import type { LeaseGrant } from '../../src/shared/contract/services-messages.js';
import { createLogger } from '../../src/shared/logger.js';
import { Cleanup } from '../support/cleanup.js';
import { ManualClock } from '../support/manual-clock.js';

/** Copies as the supervisor keeps them, with stops that end at once (or are held, with `holdStops`). */
class FakeCopies implements Copies {
  readonly map = new Map<string, { generation: number; restarts: number; stopping: boolean }>();
  readonly log: string[] = [];
  holdStops = false;
  lateMs: number[] = [];
  running = () => this.map;
  start = (spec: ServiceSpec) => {
    this.log.push(`start ${spec.name}@${spec.generation}.${spec.restarts} ${spec.arg}`);
    this.map.set(spec.name, { generation: spec.generation, restarts: spec.restarts, stopping: false });
  };
  stop = (name: string, reason: string) => {
    this.log.push(`stop ${name}@${this.map.get(name)!.generation}: ${reason}`);
    if (this.holdStops) this.map.get(name)!.stopping = true;
    else this.map.delete(name);
  };
  stopAll = (reason: string, lateMs: number) => {
    this.lateMs.push(lateMs);
    for (const name of [...this.map.keys()]) this.stop(name, reason);
  };
}

const svc = (generation: number, restarts = 0, arg = 'x') => ({ generation, restarts, action: 'worker', arg });

describe('LeaseHolder (agent side of the services lease)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** `earlyMs`: timers fire this much before they are due, as Node's may by performance.now. */
  function setup(stateDir = cleanup.tempDir('pushfleet-lease-'), earlyMs = 0) {
    const clock = new ManualClock(1000);
    const timers = { ...clock, now: clock.now, setTimeout: (fn: () => void, ms: number) => clock.setTimeout(fn, ms - earlyMs) };
    const copies = new FakeCopies();
    const refused: string[] = [];
    const file = new GenerationFile(stateDir);
    const holder = new LeaseHolder({ agent: 'a1', session: 's1', clock: timers, copies, generations: file, refused: (name, p, reason) => refused.push(`${name}@${p.generation}: ${reason}`), log: createLogger('test', 'silent') });
    let grantedAt = 0;
    const grant = (seq: number, services: LeaseGrant['services'], leaseMs = 1500, at = ++grantedAt): LeaseGrant => ({ v: 1, session: 's1', seq, grantedAt: at, leaseMs, renewMs: 500, services });
    return { clock, copies, refused, holder, grant, stateDir, file };
  }

  it('holds the lease until a0 + leaseMs and stops every service when it runs out', () => {
    const { clock, copies, holder, grant } = setup();
    const req = holder.renewal();
    expect(req).toEqual({ v: 1, agent: 'a1', session: 's1', seq: 1, running: {} });
    clock.advance(100);
    holder.granted(grant(req.seq, { web: svc(1), db: svc(4) }));
    expect(copies.log).toEqual(['start web@1.0 x', 'start db@4.0 x']);
    expect(holder.renewal().running).toEqual({ web: 1, db: 4 });
    clock.advance(1399); // 1499 ms after a0
    expect(copies.map.size).toBe(2);
    clock.advance(1);
    expect(holder.held()).toBe(false);
    expect(copies.map.size).toBe(0);
    expect(copies.log.slice(2)).toEqual(['stop web@1: lease ran out', 'stop db@4: lease ran out']);
    expect(copies.lateMs).toEqual([0]);
  });

  it('a timer that fires just before the end (timers may run early) still stops the services at the end', () => {
    const { clock, copies, holder, grant } = setup(undefined, 0.5);
    holder.granted(grant(holder.renewal().seq, { web: svc(1) }));
    clock.advance(1499.5);
    expect(copies.map.size).toBe(1);
    clock.advance(1);
    expect(copies.log.at(-1)).toBe('stop web@1: lease ran out');
  });

  it('a lease-out noticed late (a stalled event loop) says how late, so SIGKILL still lands on time', () => {
    const { clock, copies, holder, grant } = setup();
    holder.granted(grant(holder.renewal().seq, { web: svc(1) }));
    clock.time += 1800; // the loop was blocked past the expiry
    clock.advance(0);
    expect(copies.log.at(-1)).toBe('stop web@1: lease ran out');
    expect(copies.lateMs).toEqual([300]);
  });

  it('a delayed grant only shortens the lease: it counts from the request, never from its arrival', () => {
    const { clock, copies, holder, grant } = setup();
    const first = holder.renewal();
    clock.advance(1200); // the grant sat in the broker for 1.2 s
    holder.granted(grant(first.seq, { web: svc(1) }));
    expect(holder.heldUntil()).toBe(1000 + 1500);
    clock.advance(300);
    expect(copies.map.size).toBe(0);
    // A grant later than the whole lease starts nothing.
    const late = holder.renewal();
    clock.advance(1500);
    holder.granted(grant(late.seq, { web: svc(2) }));
    expect(copies.log).toEqual(['start web@1.0 x', 'stop web@1: lease ran out']);
  });

  it('an older grant arriving after a newer one extends nothing past a0 + leaseMs and does not change what runs', () => {
    const { clock, copies, holder, grant } = setup();
    const r1 = holder.renewal();
    clock.advance(500);
    const r2 = holder.renewal();
    holder.granted(grant(r2.seq, { web: svc(2) }));
    holder.granted(grant(r1.seq, { web: svc(1) })); // delayed, from before
    expect(holder.heldUntil()).toBe(1500 + 1500);
    expect(copies.log).toEqual(['start web@2.0 x']);
  });

  it("applies the hub's own grants echoing the latest seq by grantedAt, and they never lengthen the lease", () => {
    const { clock, copies, holder, grant } = setup();
    const req = holder.renewal();
    holder.granted(grant(req.seq, { web: svc(1) }, 1500, 10));
    clock.advance(400);
    // A new placement, then a cancel, both sent unasked with the seq of the latest renewal.
    holder.granted(grant(req.seq, { web: svc(1), db: svc(2) }, 1500, 20));
    holder.granted(grant(req.seq, { db: svc(2) }, 1500, 30));
    expect(copies.log).toEqual(['start web@1.0 x', 'start db@2.0 x', 'stop web@1: not in the lease grant (cancelled or moved)']);
    // One delayed from before the cancel changes nothing.
    holder.granted(grant(req.seq, { web: svc(1), db: svc(2) }, 1500, 25));
    expect(copies.log).toHaveLength(3);
    expect(holder.heldUntil()).toBe(1000 + 1500);
    clock.advance(1100);
    expect(copies.map.size).toBe(0);
  });

  it('forgets the send times of requests older than the applied grant: their grants hold nothing', () => {
    const { clock, copies, holder, grant } = setup();
    const r1 = holder.renewal();
    clock.advance(500);
    const r2 = holder.renewal();
    holder.granted(grant(r2.seq, {}));
    holder.granted(grant(r1.seq, { web: svc(1) }));
    expect(holder.heldUntil()).toBe(1500 + 1500);
    expect(copies.log).toEqual([]);
  });

  it('ignores a grant for another session (a former life of the agent) or a request never made', () => {
    const { copies, holder, grant } = setup();
    const req = holder.renewal();
    holder.granted({ ...grant(req.seq, { web: svc(1) }), session: 'old' });
    holder.granted(grant(req.seq + 5, { web: svc(1) }));
    expect(holder.held()).toBe(false);
    expect(copies.log).toEqual([]);
  });

  it('refuses a stale generation, and one that ended here, also after the agent restarts', () => {
    const { clock, copies, refused, holder, grant, stateDir } = setup();
    holder.granted(grant(holder.renewal().seq, { web: svc(3) }));
    holder.granted(grant(holder.renewal().seq, {})); // cancelled or moved: stopped, generation 3 ended here
    holder.granted(grant(holder.renewal().seq, { web: svc(2) }));
    holder.granted(grant(holder.renewal().seq, { web: svc(3, 1) }));
    expect(copies.log).toEqual(['start web@3.0 x', 'stop web@3: not in the lease grant (cancelled or moved)']);
    expect(refused).toEqual(['web@2: generation 2 is older than generation 3 seen here', 'web@3: generation 3 ended here']);

    const again = setup(stateDir);
    again.clock.advance(clock.time);
    again.holder.granted(again.grant(again.holder.renewal().seq, { web: svc(3, 2) }));
    expect(again.refused).toEqual(['web@3: generation 3 ended here']);
    again.holder.granted(again.grant(again.holder.renewal().seq, { web: svc(4) }));
    expect(again.copies.log).toEqual(['start web@4.0 x']);
  });

  it('a crashed copy is started again only for a higher restart count (the hub decides restarts)', () => {
    const { copies, refused, holder, grant } = setup();
    holder.granted(grant(holder.renewal().seq, { web: svc(1) }));
    copies.map.delete('web'); // it exited
    holder.exited();
    holder.granted(grant(holder.renewal().seq, { web: svc(1) })); // a renewal before the hub saw the exit
    holder.granted(grant(holder.renewal().seq, { web: svc(1, 1) }));
    expect(copies.log).toEqual(['start web@1.0 x', 'start web@1.1 x']);
    expect(refused).toEqual([]);
  });

  it('stops a copy at once on hearing a higher generation, and starts the new one only after the old is gone', () => {
    const { copies, holder, grant } = setup();
    holder.granted(grant(holder.renewal().seq, { web: svc(1), db: svc(1) }));
    holder.heard('db', 2); // placed on another agent
    expect(copies.log).toEqual(['start web@1.0 x', 'start db@1.0 x', 'stop db@1: superseded by generation 2']);
    copies.holdStops = true;
    holder.granted(grant(holder.renewal().seq, { web: svc(5) }));
    expect(copies.log.at(-1)).toBe('stop web@1: superseded by generation 5');
    holder.granted(grant(holder.renewal().seq, { web: svc(5) }));
    expect(copies.log.filter((l) => l.startsWith('start web@5'))).toEqual([]); // the old copy is still stopping
    copies.map.delete('web');
    holder.exited();
    expect(copies.log.at(-1)).toBe('start web@5.0 x');
  });

  it('stops a copy whose own generation is placed on nobody (cancelled, moving), and never starts it again', () => {
    const { copies, refused, holder, grant, file } = setup();
    holder.granted(grant(holder.renewal().seq, { web: svc(3) }));
    holder.heard('web', 3);
    expect(copies.log).toEqual(['start web@3.0 x', 'stop web@3: generation 3 was placed elsewhere or cancelled']);
    // Refused for the grant that still lists it, and for a restart of it.
    holder.granted(grant(holder.renewal().seq, { web: svc(3, 1) }));
    expect(refused).toEqual(['web@3: generation 3 ended here', 'web@3: generation 3 ended here']);
    expect(copies.log).toHaveLength(2);
    // Placements of services this agent never ran are not written down.
    holder.heard('other', 9);
    expect(Object.keys(file.load())).toEqual(['web']);
  });

  it('records the generation durably before it starts a copy, and starts nothing when it cannot', () => {
    const { copies, refused, holder, grant, file } = setup();
    holder.granted(grant(holder.renewal().seq, { web: svc(7) }));
    expect(file.load()).toEqual({ web: { generation: 7, restarts: 0, ended: false } });
    file.save = () => {
      throw new Error('ENOSPC: no space left on device');
    };
    holder.granted(grant(holder.renewal().seq, { web: svc(7), db: svc(1) }));
    expect(copies.log).toEqual(['start web@7.0 x']);
    expect(refused).toEqual(['db@1: cannot record generation 1: ENOSPC: no space left on device']);
  });
});

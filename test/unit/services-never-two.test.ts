import { describe, expect, it } from 'vitest';
import { DEFAULT_HEARTBEAT_MISS_MS, type CopyRef } from '../../src/hub/engines/services/fencing.js';
import { DEFAULT_LEASE, newService, type Service, type ServiceRequest } from '../../src/hub/engines/services/model.js';
import { DEFAULT_RESTART } from '../../src/hub/engines/services/restart-policy.js';
import { ServiceMachine, type AgentReport, type MachineSettings, type Result, type RunRef, type ServiceEffect } from '../../src/hub/engines/services/service-machine.js';

/** As the engine creates one: the store gives the stored service (nothing to lift here), then the machine takes it. */
const create = (m: ServiceMachine, req: ServiceRequest, now: number): Result => m.create(newService(req, m.nextSeq(), now), now);

/**
 * A discrete-event model of hub, broker and agents, driven by a seeded generator, checking after
 * every event that no service has two processes alive. The agents behave as the README asks of
 * them: a process runs only under a lease (held until the renewal's own send time a0 + leaseMs on
 * the agent's clock, which runs at a slightly wrong rate), takes up to its stopTimeout to die after
 * SIGTERM, and keeps running after its agent is cut off or killed until that lease runs out.
 * The broker delays messages (sometimes by seconds), keeps them in order per link, drops them
 * across a partition, and fires last wills late. The hub crashes and restarts from its saves.
 */

const SETTINGS: MachineSettings = { ...DEFAULT_LEASE, heartbeatMissMs: DEFAULT_HEARTBEAT_MISS_MS, restart: DEFAULT_RESTART, historyLimit: 20 };

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    // mulberry32
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Proc = { generation: number; restarts: number; dying: boolean };
type Agent = {
  id: string;
  rate: number;
  offset: number;
  connected: boolean;
  killed: boolean;
  maxWorkers: number;
  stopTimeoutMs: number;
  latest: [number, number];
  holds: Map<string, { generation: number; until: number }>;
  procs: Map<string, Proc>;
  started: Set<string>;
  seen: Map<string, number>;
  /** The agent's retained status per service: published again on reconnect, read by a restarted hub. */
  reports: Map<string, AgentReport>;
};

type Ev = { at: number; order: number; run: () => void };

class Sim {
  readonly random: () => number;
  private queue: Ev[] = [];
  private order = 0;
  now = 0;
  readonly agents: Agent[] = [];
  private saved = new Map<string, Service>();
  private retained = new Map<string, Extract<ServiceEffect, { kind: 'placement' }>>();
  private machine: ServiceMachine;
  private hubUp = true;
  private wake?: Ev;
  private linkFree = new Map<string, number>();
  violations: string[] = [];
  /** The fleet is whole again: no more broker stalls or crashes. */
  calm = false;
  replaced = 0;

  constructor(
    seed: number,
    private readonly hub: MachineSettings,
    /** Set: agents that ignore the hub's leaseMs and hold this long instead (a broken fence). */
    private readonly agentLeaseMs?: number,
  ) {
    this.random = prng(seed);
    this.machine = new ServiceMachine(hub, [], 0);
  }

  at(at: number, run: () => void, first = false): Ev {
    // Deaths sort before anything else at the same instant: a process dead at t and one started at t do not overlap.
    const ev = { at, order: first ? -1 : this.order++, run };
    const i = this.queue.findIndex((e) => e.at > at || (e.at === at && e.order > ev.order));
    this.queue.splice(i < 0 ? this.queue.length : i, 0, ev);
    return ev;
  }

  runUntil(end: number): void {
    while (this.queue.length && this.queue[0]!.at <= end) {
      const ev = this.queue.shift()!;
      this.now = ev.at;
      ev.run();
      this.check();
    }
    this.now = end;
  }

  private check(): void {
    const alive = new Map<string, string[]>();
    for (const a of this.agents) for (const [name, p] of a.procs) alive.set(name, [...(alive.get(name) ?? []), `${a.id}/g${p.generation}`]);
    for (const [name, copies] of alive) if (copies.length > 1) this.violations.push(`t=${this.now.toFixed(0)} ${name}: ${copies.join(' + ')}`);
  }

  /** Per-link FIFO with a random delay, now and then a broker stall of seconds. */
  private send(link: string, deliver: () => void): void {
    const delay = !this.calm && this.random() < 0.03 ? 500 + this.random() * 2500 : 1 + this.random() * 40;
    const at = Math.max(this.linkFree.get(link) ?? 0, this.now + delay);
    this.linkFree.set(link, at);
    this.at(at, deliver);
  }

  private clock(a: Agent): number {
    return this.now * a.rate + a.offset;
  }

  // ---- hub ----
  hubDo(call: (m: ServiceMachine) => Result): void {
    if (!this.hubUp) return;
    this.perform(call(this.machine).effects);
  }

  private perform(effects: ServiceEffect[]): void {
    for (const e of effects) {
      if (e.kind === 'save') this.saved.set(e.service.name, structuredClone(e.service));
      else if (e.kind === 'wake') {
        if (this.wake) this.queue = this.queue.filter((q) => q !== this.wake);
        this.wake = this.at(e.at, () => this.hubDo((m) => m.tick(this.now)));
      } else if (e.kind === 'placement') {
        this.retained.set(e.name, e);
        for (const a of this.agents) if (a.connected) this.send(`hub>${a.id}`, () => a.connected && this.onPlacement(a, e));
      } else {
        const a = this.agents.find((x) => x.id === e.agent);
        if (a?.connected) this.send(`hub>${a.id}`, () => a.connected && this.onLease(a, e));
      }
    }
  }

  crashHub(downMs: number): void {
    this.hubUp = false;
    if (this.wake) this.queue = this.queue.filter((q) => q !== this.wake);
    this.at(this.now + downMs, () => {
      this.hubUp = true;
      this.machine = new ServiceMachine(this.hub, [...this.saved.values()].map((s) => structuredClone(s)), this.now);
      for (const a of this.agents) if (a.connected) this.hubDo((m) => m.serverUp(this.server(a), this.now));
      for (const a of this.agents) for (const r of a.reports.values()) this.hubDo((m) => m.report(r, this.now));
      this.hubDo((m) => m.tick(this.now));
    });
  }

  private toHub(a: Agent, call: (m: ServiceMachine) => Result): void {
    if (a.connected) this.send(`${a.id}>hub`, () => this.hubDo(call));
  }

  // ---- agents ----
  addAgent(id: string, maxWorkers: number, stopTimeoutMs: number): void {
    const a: Agent = { id, rate: 1 + (this.random() - 0.5) * 2e-4, offset: this.random() * 1e6, connected: true, killed: false, maxWorkers, stopTimeoutMs, latest: [-Infinity, -Infinity], holds: new Map(), procs: new Map(), started: new Set(), seen: new Map(), reports: new Map() };
    this.agents.push(a);
    this.hubDo((m) => m.serverUp(this.server(a), this.now));
    const renew = () => {
      if (a.killed) return;
      const a0 = this.clock(a);
      const reported: CopyRef[] = [...a.procs].map(([name, p]) => ({ name, generation: p.generation }));
      this.toHub(a, (m) => m.renewal(a.id, a0, reported, this.now));
      this.at(this.now + this.hub.renewMs, renew);
    };
    this.at(this.now + this.random() * this.hub.renewMs, renew);
  }

  server(a: Agent) {
    return { agent: a.id, labels: {}, actions: { work: { stopTimeoutMs: a.stopTimeoutMs } }, maxWorkers: a.maxWorkers, online: true };
  }

  private onLease(a: Agent, e: Extract<ServiceEffect, { kind: 'lease' }>): void {
    const key: [number, number] = [e.a0, e.grantedAt];
    if (key[0] < a.latest[0] || (key[0] === a.latest[0] && key[1] < a.latest[1])) return;
    a.latest = key;
    const granted = new Set(e.runs.map((r) => r.name));
    for (const [name] of a.procs) if (!granted.has(name)) this.stop(a, name);
    for (const name of [...a.holds.keys()]) if (!granted.has(name)) a.holds.delete(name);
    for (const run of e.runs) this.hold(a, run, e.a0 + (this.agentLeaseMs ?? e.leaseMs));
  }

  private hold(a: Agent, run: RunRef, until: number): void {
    if (run.generation < (a.seen.get(run.name) ?? 0)) return;
    a.seen.set(run.name, run.generation);
    a.holds.set(run.name, { generation: run.generation, until });
    // The lease runs out on the agent's clock: the real instant that clock shows `until`.
    this.at((until - a.offset) / a.rate, () => {
      const h = a.holds.get(run.name);
      if (h && h.until <= this.clock(a) + 1e-6) {
        a.holds.delete(run.name);
        this.stop(a, run.name);
      }
    });
    const p = a.procs.get(run.name);
    if (p && p.generation !== run.generation) this.stop(a, run.name);
    const key = `${run.name}/${run.generation}/${run.restarts}`;
    if (p || a.started.has(key) || a.killed || until <= this.clock(a)) return;
    a.started.add(key);
    a.procs.set(run.name, { generation: run.generation, restarts: run.restarts, dying: false });
    if (run.generation > 1) this.replaced++;
    this.report(a, { agent: a.id, name: run.name, generation: run.generation, restarts: run.restarts, state: 'running' });
    if (!this.calm && this.random() < 0.15) this.at(this.now + this.random() * 4000, () => this.die(a, run.name, run.generation, run.restarts));
  }

  private onPlacement(a: Agent, e: Extract<ServiceEffect, { kind: 'placement' }>): void {
    const p = a.procs.get(e.name);
    if (p && (e.generation > p.generation || (e.generation === p.generation && e.agent !== a.id))) this.stop(a, e.name);
  }

  /** SIGTERM now; dead somewhere within the stop timeout (often right at it). */
  private stop(a: Agent, name: string): void {
    const p = a.procs.get(name);
    if (!p || p.dying) return;
    p.dying = true;
    const after = this.random() < 0.5 ? a.stopTimeoutMs : this.random() * a.stopTimeoutMs;
    this.at(this.now + after, () => this.die(a, name, p.generation, p.restarts), true);
  }

  private die(a: Agent, name: string, generation: number, restarts: number): void {
    const p = a.procs.get(name);
    if (!p || p.generation !== generation || p.restarts !== restarts) return;
    a.procs.delete(name);
    if (!a.killed) this.report(a, { agent: a.id, name, generation, restarts, state: 'exited', reason: 'exit 1' });
  }

  private report(a: Agent, r: AgentReport): void {
    a.reports.set(r.name, r);
    this.toHub(a, (m) => m.report(r, this.now));
  }

  /** Cut off from the broker (or killed: forever); its last will fires when the broker notices. */
  partition(a: Agent, forMs: number | null): void {
    if (!a.connected) return;
    a.connected = false;
    if (forMs === null) a.killed = true;
    this.at(this.now + this.random() * 3000, () => this.hubDo((m) => m.serverDown(a.id, 'last will', this.now)));
    if (forMs !== null)
      this.at(this.now + forMs, () => {
        a.connected = true;
        this.hubDo((m) => m.serverUp(this.server(a), this.now));
        for (const r of a.reports.values()) this.toHub(a, (m) => m.report(r, this.now));
        for (const e of this.retained.values()) this.send(`hub>${a.id}`, () => a.connected && this.onPlacement(a, e));
      });
  }

  get running(): number {
    return this.agents.reduce((n, a) => n + a.procs.size, 0);
  }

  active(): string[] {
    return this.hubUp ? this.machine.list().map((s) => s.name) : [];
  }
}

function scenario(seed: number, hub: MachineSettings = SETTINGS, agentLeaseMs?: number): Sim {
  const sim = new Sim(seed, hub, agentLeaseMs);
  const r = sim.random;
  for (let i = 0; i < 5; i++) sim.addAgent(`a${i}`, 2 + Math.floor(r() * 3), 100 + Math.floor(r() * 1400));
  const names = Array.from({ length: 10 }, (_, i) => `svc-${i}`);
  for (const name of names) sim.hubDo((m) => create(m, { name, action: 'work', arg: name }, 0));
  for (let t = 1000; t < 60_000; t += 500 + r() * 1500) {
    sim.at(t, () => {
      const x = r();
      const agent = sim.agents[Math.floor(r() * sim.agents.length)]!;
      const name = names[Math.floor(r() * names.length)]!;
      if (x < 0.15) sim.partition(agent, 200 + r() * 6000);
      else if (x < 0.18) sim.partition(agent, null);
      else if (x < 0.3) sim.hubDo((m) => m.cancel(name, sim.now));
      else if (x < 0.45) sim.hubDo((m) => create(m, { name, action: 'work' }, sim.now));
      else if (x < 0.5) sim.crashHub(r() * 3000);
    });
  }
  sim.runUntil(60_000);
  return sim;
}

describe('services: never two copies', () => {
  it('holds over 150 randomized runs of partitions, kills, late wills, broker stalls, crashes, cancels and hub restarts', () => {
    let replacedRuns = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const sim = scenario(seed);
      expect(sim.violations, `seed ${seed}`).toEqual([]);
      if (sim.replaced > 0) replacedRuns++;
    }
    // The runs did move services between agents, not just sit still.
    expect(replacedRuns).toBeGreaterThan(100);
  });

  it('brings every service back once the fleet is whole again', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const sim = scenario(seed);
      sim.calm = true;
      sim.runUntil(600_000);
      expect(sim.violations, `seed ${seed}`).toEqual([]);
      const capacity = sim.agents.filter((a) => !a.killed).reduce((n, a) => n + a.maxWorkers, 0);
      expect(sim.running, `seed ${seed}`).toBe(Math.min(capacity, sim.active().length));
    }
  });

  it('catches two copies when agents hold longer leases than the hub assumes (the check can fail)', () => {
    const failing = Array.from({ length: 30 }, (_, i) => scenario(i + 1, { ...SETTINGS, leaseMs: 100, driftMs: 0 }, 1500)).filter((s) => s.violations.length > 0);
    expect(failing.length).toBeGreaterThan(0);
  });
});

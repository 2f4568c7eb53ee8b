import { Fencing, staleCopies, type CopyRef, type FencingSettings } from './fencing.js';
import { latestFence, SERVICE_NAME, type Placement, type Service, type ServiceServer, type ServiceStatus } from './model.js';
import { planQueue, type QueueItem } from './placement.js';
import { onExit, rescheduleDelayMs, type RestartPolicy } from './restart-policy.js';

export type MachineSettings = FencingSettings & { restart: RestartPolicy; historyLimit: number };

/** One run the agent should have: it starts (generation, restarts) at most once. */
export type RunRef = CopyRef & { restarts: number; action: string; arg?: string };

/**
 * What the engine must do, in order. A `save` must be durable before any later effect is
 * published (durable intent before action: a generation is stored before it is sent).
 */
export type ServiceEffect =
  | { kind: 'save'; service: Service }
  /**
   * Retained, signed: who runs this service now. An agent stops its copy when this names a higher
   * generation, or the same generation on another agent or none (agent null); it never starts from it.
   */
  | { kind: 'placement'; name: string; generation: number; agent: string | null; run?: RunRef }
  /**
   * Signed, to one agent: its whole lease (run exactly `runs`, stop everything else, `stop` named),
   * held until a0 + leaseMs on the agent's own clock (the hub's leaseMs: the agent must not hold
   * longer than the hub assumes), renewed every renewMs. The agent keeps the latest by (a0, grantedAt).
   */
  | { kind: 'lease'; agent: string; a0: number; grantedAt: number; leaseMs: number; renewMs: number; runs: RunRef[]; stop: CopyRef[] }
  /** Call `tick` at this hub time (replaces any earlier wake). */
  | { kind: 'wake'; at: number };

/** `refused`: the agent will not run this placement (a generation that ended there, e.g. at a lease run-out): not a crash; it is placed anew. */
export type AgentReport = { agent: string; name: string; generation: number; restarts: number; state: 'running' | 'exited' | 'refused'; reason?: string };
export type Result = { error?: string; effects: ServiceEffect[] };

/** How a refused placement's end reason starts (the agent's supervisor words it so too). */
const REFUSED = 'refused: ';

/** Statuses whose placement the agent holds a lease for. */
export const GRANTED: readonly ServiceStatus[] = ['placed', 'running', 'restarting'];

/**
 * The services engine's decisions without I/O: every event takes the hub's `now` and returns the
 * effects to perform. Never two copies: a new generation is placed only after every earlier copy
 * is confirmed stopped by its agent or its fence (`Placement.safeAt`) has passed; see README.md.
 */
export class ServiceMachine {
  private readonly services = new Map<string, Service>();
  private readonly servers = new Map<string, ServiceServer>();
  private readonly fencing: Fencing;
  /** The agent's latest renewal send time (its clock): unsolicited leases reuse it, so they never extend a lease. */
  private readonly a0 = new Map<string, number>();
  private readonly restartAt = new Map<string, number>();
  /** Crash-looping services waiting for any agent, and the one to avoid until then. */
  private readonly retry = new Map<string, { at: number; avoid: string }>();
  private effects: ServiceEffect[] = [];

  /**
   * `loaded`: the store's services after a hub restart. A grant may have left just before the
   * crash, so every agent holding a placement counts as granted now, and every copy not yet
   * confirmed stopped is fenced from now: this depends only on this run's clock, not on the
   * previous run's (a wall-clock step across the restart cannot shorten a fence).
   */
  constructor(
    private readonly settings: MachineSettings,
    loaded: Service[],
    now: number,
  ) {
    this.fencing = new Fencing(settings);
    const refence = (p: Placement) => {
      if (p.safeAt !== undefined) p.safeAt = Math.max(p.safeAt, now + settings.leaseMs + p.stopTimeoutMs + settings.driftMs);
    };
    for (const s of loaded) {
      this.services.set(s.name, s);
      s.history.forEach(refence);
      if (s.current) {
        refence(s.current);
        this.fencing.recordGrant(s.current.agent, now);
        this.fencing.heard(s.current.agent, now);
      }
      if (s.status === 'restarting') this.restartAt.set(s.name, now);
    }
  }

  get(name: string): Service | undefined {
    return this.services.get(name);
  }

  /** Every service held, cancelled ones still fenced included, in no order. */
  all(): Iterable<Service> {
    return this.services.values();
  }

  list(): Service[] {
    return [...this.services.values()].filter((s) => s.status !== 'cancelled').sort((a, b) => a.seq - b.seq);
  }

  /** The monitor's view of the servers: capacity in use (fenced copies included) and the services placed there. */
  serverList(now: number): (ServiceServer & { used: number; services: string[] })[] {
    const load = this.load(now);
    return [...this.servers.values()]
      .sort((a, b) => (a.agent < b.agent ? -1 : 1))
      .map((server) => ({ ...server, used: load.get(server.agent) ?? 0, services: this.list().filter((s) => s.current?.agent === server.agent).map((s) => s.name) }));
  }

  /**
   * `service`: as the store created it (queued; its generation lifted above any earlier service
   * of its name). A re-created name continues the old one's generations, and keeps any copy of
   * the old one that may still run in its history: that copy fences the new one.
   */
  create(service: Service, now: number): Result {
    if (!SERVICE_NAME.test(service.name)) return this.fail(`service name "${service.name}" must be lower-case letters, digits and "-" (at most 63)`);
    const old = this.services.get(service.name);
    if (old && old.status !== 'cancelled') return this.fail(`service ${service.name} exists (${old.status}); remove it first`);
    const fenced = (old?.history ?? []).filter((p) => p.safeAt !== undefined && p.safeAt > now && !service.history.some((h) => h.generation === p.generation));
    const created: Service = { ...structuredClone(service), status: 'queued', generation: Math.max(service.generation, old?.generation ?? 0), history: [...service.history, ...fenced] };
    delete created.current;
    this.services.set(created.name, created);
    this.save(created);
    return this.done(now);
  }

  /** The creation order the next service gets (after every service known, cancelled ones included). */
  nextSeq(): number {
    let seq = 0;
    for (const s of this.services.values()) seq = Math.max(seq, s.seq);
    return seq + 1;
  }

  cancel(name: string, now: number): Result {
    const s = this.services.get(name);
    if (!s || s.status === 'cancelled') return this.fail(`no service ${name}`);
    this.restartAt.delete(name);
    this.retry.delete(name);
    if (!s.current) {
      s.status = 'cancelled';
      this.save(s);
      this.effects.push({ kind: 'placement', name, generation: s.generation, agent: null });
    } else if (s.status === 'restarting') {
      // Its latest run exited (reported) and the next was not issued: nothing to stop.
      this.end(s, 'cancelled', 'cancelled', now, true);
      this.pushLease(s.history[0]!.agent, now);
    } else if (s.status !== 'stopping') {
      const agent = s.current.agent;
      s.current.safeAt = this.fencing.safeToReplaceAt(agent, s.current.stopTimeoutMs);
      s.status = 'stopping';
      this.save(s);
      this.effects.push({ kind: 'placement', name, generation: s.generation, agent: null });
      this.pushLease(agent, now);
    }
    return this.done(now);
  }

  serverUp(server: ServiceServer, now: number): Result {
    this.servers.set(server.agent, { ...server, online: true });
    this.fencing.heard(server.agent, now);
    return this.done(now);
  }

  /** Its last will fired (or it said goodbye): its services go elsewhere once fenced out. */
  serverDown(agent: string, reason: string, now: number): Result {
    this.lose(agent, reason, now);
    return this.done(now);
  }

  heartbeat(agent: string, now: number): Result {
    if (this.servers.get(agent)?.online) this.fencing.heard(agent, now);
    return this.done(now);
  }

  /** A renewal request: `a0` is the agent's own send time, `reported` the copies it runs. */
  renewal(agent: string, a0: number, reported: CopyRef[], now: number): Result {
    this.a0.set(agent, a0);
    const server = this.servers.get(agent);
    if (server) server.online = true;
    this.fencing.heard(agent, now);
    this.pushLease(agent, now, reported);
    return this.done(now);
  }

  report(r: AgentReport, now: number): Result {
    const s = this.services.get(r.name);
    const current = s?.current?.agent === r.agent && s.current.generation === r.generation ? s.current : undefined;
    if (!s || !current) {
      // Only the exit of the placement's latest run proves it gone: a late exit of an earlier run does not.
      const old = s?.history.find((p) => p.agent === r.agent && p.generation === r.generation && p.restarts === r.restarts);
      if (r.state === 'exited' && old && old.safeAt !== undefined) {
        old.safeAt = undefined;
        this.save(s!);
      } else if (r.state === 'running' && this.a0.has(r.agent)) this.pushLease(r.agent, now, [r]);
      return this.done(now);
    }
    if (r.restarts !== current.restarts) return this.done(now);
    // The agent runs no copy of a placement it refuses: it ends unfenced and the service is queued
    // again at its place in creation order, for a new generation (the agent never runs this one).
    if (r.state === 'refused') {
      if (s.status === 'stopping') this.end(s, 'cancelled', 'cancelled', now, true);
      else {
        const before = s.history[0];
        const again = before?.agent === r.agent && before.endReason?.startsWith(REFUSED) === true && before.endedAt! > now - this.settings.restart.delayMs;
        const reason = r.reason ?? 'by the agent';
        this.end(s, 'queued', reason.startsWith(REFUSED) ? reason : `${REFUSED}${reason}`, now, true);
        // Refused twice in a row: not back to that agent for a restart delay. One still stopping
        // an old copy (or busy) would refuse again at once, burning a generation per round trip.
        if (again) this.retry.set(s.name, { at: now + this.settings.restart.delayMs, avoid: r.agent });
      }
      return this.done(now);
    }
    if (r.state === 'running') {
      if (s.status === 'placed') {
        s.status = 'running';
        current.runningAt = now;
        this.save(s);
      }
    } else if (s.status === 'stopping') this.end(s, 'cancelled', 'cancelled', now, true);
    else if (s.status !== 'restarting') this.exited(s, current, r.reason ?? 'exited', now);
    return this.done(now);
  }

  tick(now: number): Result {
    for (const agent of this.fencing.missed(now)) this.lose(agent, 'heartbeats missed', now);
    for (const [name, at] of this.restartAt) if (at <= now) this.restart(name, now);
    for (const s of this.services.values()) if (s.status === 'stopping' && s.current!.safeAt! <= now) this.end(s, 'cancelled', 'cancelled', now, false);
    return this.done(now);
  }

  private exited(s: Service, p: Placement, reason: string, now: number): void {
    const decision = onExit(p.exits, now, this.settings.restart);
    p.exits = decision.exits;
    if (decision.kind === 'restart') {
      s.status = 'restarting';
      this.restartAt.set(s.name, decision.at);
      this.save(s);
      return;
    }
    const agent = p.agent;
    this.end(s, 'failing', `crash loop: ${reason}`, now, true);
    const loops = s.history.findIndex((h) => !h.endReason?.startsWith('crash loop'));
    this.retry.set(s.name, { at: now + rescheduleDelayMs(loops < 0 ? s.history.length : loops, this.settings.restart), avoid: agent });
  }

  private restart(name: string, now: number): void {
    this.restartAt.delete(name);
    const s = this.services.get(name)!;
    s.current!.restarts += 1;
    s.status = 'placed';
    this.save(s);
    this.announce(s, now);
  }

  /** Ends the placement in force; `stopped`: its agent confirmed the copy is gone, so no fence is needed. */
  private end(s: Service, status: ServiceStatus, reason: string, now: number, stopped: boolean): void {
    const p = s.current!;
    p.endedAt = now;
    p.endReason = reason;
    p.safeAt = stopped ? undefined : (p.safeAt ?? this.fencing.safeToReplaceAt(p.agent, p.stopTimeoutMs));
    s.history = [p, ...s.history].slice(0, this.settings.historyLimit);
    s.current = undefined;
    s.status = status;
    this.restartAt.delete(s.name);
    this.save(s);
    this.effects.push({ kind: 'placement', name: s.name, generation: s.generation, agent: null });
  }

  private lose(agent: string, reason: string, now: number): void {
    const server = this.servers.get(agent);
    if (server) server.online = false;
    this.fencing.forget(agent);
    this.a0.delete(agent);
    for (const s of this.services.values()) {
      if (s.current?.agent !== agent || !GRANTED.includes(s.status)) continue;
      // Restarting: its latest run exited (reported) and the next was not issued, so nothing of it runs.
      this.end(s, 'queued', `agent lost (${reason})`, now, s.status === 'restarting');
    }
  }

  private place(s: Service, agent: string, now: number): void {
    const server = this.servers.get(agent)!;
    s.generation += 1;
    s.current = { agent, generation: s.generation, placedAt: now, restarts: 0, stopTimeoutMs: server.actions[s.action]!.stopTimeoutMs, exits: [] };
    s.status = 'placed';
    this.retry.delete(s.name);
    this.save(s);
    this.announce(s, now);
  }

  private announce(s: Service, now: number): void {
    this.effects.push({ kind: 'placement', name: s.name, generation: s.generation, agent: s.current!.agent, run: this.run(s) });
    this.pushLease(s.current!.agent, now);
  }

  private run(s: Service): RunRef {
    return { name: s.name, generation: s.current!.generation, restarts: s.current!.restarts, action: s.action, ...(s.arg === undefined ? {} : { arg: s.arg }) };
  }

  /** The agent's whole lease; without a renewal from it yet there is no send time to anchor one on. */
  private pushLease(agent: string, now: number, reported: CopyRef[] = []): void {
    const a0 = this.a0.get(agent);
    if (a0 === undefined) return;
    this.fencing.recordGrant(agent, now);
    const runs = [...this.services.values()].filter((s) => s.current?.agent === agent && GRANTED.includes(s.status)).map((s) => this.run(s));
    this.effects = this.effects.filter((e) => !(e.kind === 'lease' && e.agent === agent));
    this.effects.push({ kind: 'lease', agent, a0, grantedAt: now, leaseMs: this.settings.leaseMs, renewMs: this.settings.renewMs, runs, stop: staleCopies(runs, reported) });
  }

  /** Slots in use per agent: placements it holds and ended copies that may still run there. */
  private load(now: number): Map<string, number> {
    const load = new Map<string, number>();
    const add = (agent: string) => load.set(agent, (load.get(agent) ?? 0) + 1);
    for (const s of this.services.values()) {
      if (s.current) add(s.current.agent);
      for (const h of s.history) if (h.safeAt !== undefined && h.safeAt > now) add(h.agent);
    }
    return load;
  }

  private schedule(now: number): void {
    const queue: QueueItem[] = [];
    for (const s of this.services.values()) {
      if ((s.status !== 'queued' && s.status !== 'failing') || latestFence(s, now)) continue;
      const retry = this.retry.get(s.name);
      queue.push({ name: s.name, seq: s.seq, action: s.action, selector: s.selector, ...(retry && retry.at > now ? { avoid: retry.avoid } : {}) });
    }
    for (const { name, agent } of planQueue(queue, this.servers.values(), this.load(now))) this.place(this.services.get(name)!, agent, now);
    // A crash-looping service still waiting after its backoff joins the queue like any other.
    for (const [name, r] of this.retry) {
      const s = this.services.get(name)!;
      if (r.at <= now && s.status === 'failing') {
        s.status = 'queued';
        this.retry.delete(name);
        this.save(s);
      }
    }
  }

  private nextWake(now: number): number | undefined {
    const times = [this.fencing.nextMissAt(), ...this.restartAt.values(), ...[...this.retry.values()].map((r) => r.at)];
    for (const s of this.services.values()) {
      if (s.status === 'stopping') times.push(s.current!.safeAt);
      // No new copy before the latest fence of an unconfirmed earlier copy.
      const fence = latestFence(s, now);
      if ((s.status === 'queued' || s.status === 'failing') && fence) times.push(fence.safeAt);
    }
    const future = times.filter((t): t is number => t !== undefined && Number.isFinite(t));
    return future.length ? Math.max(now, Math.min(...future)) : undefined;
  }

  /** One save per service per event, at its first place: what follows it is published only after it is durable. */
  private save(s: Service): void {
    const service = structuredClone(s);
    const i = this.effects.findIndex((e) => e.kind === 'save' && e.service.name === s.name);
    if (i >= 0) this.effects[i] = { kind: 'save', service };
    else this.effects.push({ kind: 'save', service });
  }

  private fail(error: string): Result {
    return { error, effects: [] };
  }

  private done(now: number): Result {
    this.schedule(now);
    const wake = this.nextWake(now);
    if (wake !== undefined) this.effects.push({ kind: 'wake', at: wake });
    const effects = this.effects;
    this.effects = [];
    return { effects };
  }
}

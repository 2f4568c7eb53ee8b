import { TopicContract } from '../../../shared/contract/topic-table.js';
import { AgentServiceState, LeaseRenewal, type LeaseGrant } from '../../../shared/contract/services-messages.js';
import {
  SERVICES_REQUEST,
  ServiceOutput,
  servicePlacementTopic,
  serviceLeaseTopic,
  serviceStateTopic,
  type Page,
  type Paged,
  type ServerView,
  type ServiceCreate,
  type ServiceLogsView,
  type ServicePlacement,
  type ServiceView,
} from '../../../shared/contract/services-engine-messages.js';
import { AgentStatus, decode, SCHEMA_VERSION } from '../../../shared/messages.js';
import { firstLine } from '../../../shared/startup.js';
import { AGENT_STATUS_ALL } from '../../../shared/topics.js';
import { publishAndForget, type Engine, type EngineContext } from '../engine.js';
import { preciseNow } from '../orchestrator/precise-time.js';
import { machineSettings, type ServicesConfig } from './config.js';
import { latestFence, newService, placementsOf, type Service, type ServiceStatus, type ServiceStore } from './model.js';
import { OutputTails } from './output-tails.js';
import { GRANTED, ServiceMachine, type Result, type ServiceEffect } from './service-machine.js';
import { ServicesError, type ServicesApi } from './services-api.js';
import { answerServicesRequest } from './services-requests.js';
import { serverView, serviceView } from './services-views.js';
import { ServiceExistsError } from './sql-store.js';

// The services topics do not depend on any engine's prefix.
const contract = new TopicContract();
const RENEW_ALL = 'pushfleet/agents/+/services/renew';
const STATE_ALL = 'pushfleet/agents/+/services/+/state';
const OUTPUT_ALL = 'pushfleet/agents/+/services/+/output';
/** A failed store write is tried again after this, doubling up to STORE_RETRY_MAX_MS. */
const STORE_RETRY_MS = 250;
const STORE_RETRY_MAX_MS = 5000;

export type ServicesEngineDeps = {
  store: ServiceStore;
  /** The hub's monotonic epoch clock in whole ms (the store keeps integers): fences must not move with a wall-clock step. */
  now?: () => number;
};

/** The engine stopped while a store write was being retried: nothing after it is carried out. */
class Stopped extends Error {}

/**
 * The services engine (issue 13; README.md beside this file): the adapter that feeds the
 * ServiceMachine agents' statuses, renewals and copy states, and performs its effects. Every
 * event runs through one queue, and a `save` is durable before any later effect is published: a
 * generation is stored before an agent hears of it. A store that fails blocks the queue (retried
 * with backoff, the engine not ready): no lease is granted meanwhile, so agents stop their copies.
 * It is also the ServicesApi that the MQTT request topic and the REST API call.
 */
export class ServicesEngine implements Engine, ServicesApi {
  readonly name = 'services';
  readonly subscriptions = [AGENT_STATUS_ALL, RENEW_ALL, STATE_ALL, OUTPUT_ALL, SERVICES_REQUEST];
  private machine: ServiceMachine | undefined;
  private queue: Promise<void> = Promise.resolve();
  /** Each agent's renewal session and latest seq: a grant echoes them. */
  private readonly sessions = new Map<string, { session: string; seq: number }>();
  /** Renewals waiting in the queue, one per agent (a later one replaces it): the queue stays bounded while the store is down. */
  private readonly renewals = new Map<string, LeaseRenewal>();
  private readonly outputs = new OutputTails();
  /** Cancelled services still stored because a copy of theirs may run until its fence: removed once it passed. */
  private readonly kept = new Set<string>();
  private wakeTimer: unknown;
  private forgetTimer: unknown;
  /** Ends the wait before a store write is tried again (a stop does not wait out the backoff). */
  private retryNow: (() => void) | undefined;
  private ready = false;
  private stopped = false;
  private storeProblem = 'the services engine is starting';
  /** Operator requests waiting on the queue: told at once when the store starts failing. */
  private readonly waiting = new Set<(err: ServicesError) => void>();
  private readonly now: () => number;

  constructor(
    private readonly ctx: EngineContext,
    private readonly config: ServicesConfig,
    private readonly deps: ServicesEngineDeps,
  ) {
    // Rounded up: a grant is never recorded earlier than it was made, so no fence ends early.
    this.now = deps.now ?? (() => Math.ceil(preciseNow()));
  }

  /** What the REST API and the MQTT requests call. */
  get api(): ServicesApi {
    return this;
  }

  /** The services the engine holds per status (cancelled ones only while a copy may still run); empty before start. */
  statusCounts(): Partial<Record<ServiceStatus, number>> {
    const counts: Partial<Record<ServiceStatus, number>> = {};
    for (const s of this.machine?.all() ?? []) counts[s.status] = (counts[s.status] ?? 0) + 1;
    return counts;
  }

  async start(): Promise<void> {
    const loaded = await this.deps.store.load();
    this.machine = new ServiceMachine(machineSettings(this.config), loaded, this.now());
    // Everything is fenced from now (the machine's constructor); agents get back what they hold.
    for (const s of loaded) {
      if (s.status === 'cancelled') this.kept.add(s.name);
      else this.publishState(s);
      this.publishPlacement({ name: s.name, generation: s.generation, agent: s.current && GRANTED.includes(s.status) ? s.current.agent : null });
    }
    this.ready = true;
    if (loaded.length) this.ctx.log.info({ engine: this.name, services: loaded.length }, 'services: loaded from the store');
    // Sets the first timer: holders that do not renew within heartbeatMissMs are lost.
    this.event((m, now) => m.tick(now));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ctx.clock.clearTimeout(this.wakeTimer);
    this.ctx.clock.clearTimeout(this.forgetTimer);
    this.retryNow?.();
    await this.queue;
    await this.deps.store.close();
  }

  handle(topic: string, payload: Buffer): void | Promise<void> {
    if (topic === SERVICES_REQUEST) return answerServicesRequest(this, this.ctx, payload);
    const found = contract.lookup(topic);
    const agent = found?.params.agent;
    if (!found || agent === undefined) return;
    switch (found.spec.name) {
      case 'agent.status':
        return this.onStatus(agent, payload);
      case 'agent.services-renew':
        return this.onRenewal(agent, payload);
      case 'agent.service-state':
        return this.onState(agent, found.params.service!, payload);
      case 'agent.service-output':
        return this.onOutput(agent, found.params.service!, payload);
    }
  }

  // ─── Agents ────────────────────────────────────────────────────────────────────────────────

  private onStatus(agent: string, payload: Buffer): void {
    if (payload.length === 0) return void this.event((m, now) => m.serverDown(agent, 'status cleared', now));
    const d = decode(AgentStatus, payload);
    if (!d.ok || d.value.agent !== agent) return this.ignored('agent status', agent, d.ok ? `names agent ${d.value.agent}` : d.error);
    const status = d.value;
    const offer = status.services;
    if (status.state === 'offline') return void this.event((m, now) => m.serverDown(agent, 'offline', now));
    // An agent whose config no longer has `services:` runs none: its services go elsewhere.
    if (!offer) return void this.event((m, now) => m.serverDown(agent, 'offers no services', now));
    this.event((m, now) => m.serverUp({ agent, labels: status.labels, actions: offer.actions, maxWorkers: offer.maxWorkers, online: true }, now));
  }

  private onRenewal(agent: string, payload: Buffer): void {
    const d = decode(LeaseRenewal, payload);
    if (!d.ok || d.value.agent !== agent) return this.ignored('lease renewal', agent, d.ok ? `names agent ${d.value.agent}` : d.error);
    const waiting = this.renewals.has(agent);
    this.renewals.set(agent, d.value);
    if (waiting) return;
    this.event((m, now) => {
      const r = this.renewals.get(agent)!;
      this.renewals.delete(agent);
      const last = this.sessions.get(agent);
      // A duplicate or late renewal of this agent life: the newer one was answered.
      if (last?.session === r.session && r.seq <= last.seq) return { effects: [] };
      this.sessions.set(agent, { session: r.session, seq: r.seq });
      const running = Object.entries(r.running).map(([name, generation]) => ({ name, generation }));
      // The seq stands for the agent's send time a0: the machine only echoes it.
      return m.renewal(agent, r.seq, running, now);
    });
  }

  private onState(agent: string, name: string, payload: Buffer): void {
    if (payload.length === 0) return;
    const d = decode(AgentServiceState, payload);
    if (!d.ok || d.value.agent !== agent || d.value.name !== name) return this.ignored('service state', agent, d.ok ? `names ${d.value.agent}/${d.value.name}` : d.error);
    const s = d.value;
    const ended = s.state === 'ended' || s.state === 'refused';
    const reason = ended ? endReason(s) : undefined;
    const state = s.state === 'refused' ? 'refused' : ended ? 'exited' : 'running';
    this.event((m, now) => m.report({ agent, name, generation: s.generation, restarts: s.restarts, state, ...(reason !== undefined && { reason }) }, now));
  }

  /** Kept only for a copy the hub placed there: an agent cannot fill the hub with another's names. */
  private onOutput(agent: string, name: string, payload: Buffer): void {
    if (payload.length === 0) return;
    const d = decode(ServiceOutput, payload);
    if (!d.ok || d.value.agent !== agent || d.value.name !== name) return this.ignored('service output', agent, d.ok ? `names ${d.value.agent}/${d.value.name}` : d.error);
    const s = this.machine?.get(name);
    const placed = s && placementsOf(s).some((p) => p.agent === agent && p.generation === d.value.generation);
    if (placed) this.outputs.put(d.value);
  }

  private ignored(what: string, agent: string, error: string): void {
    this.ctx.log.warn({ engine: this.name, agent, error }, `services: ignored malformed ${what}`);
  }

  // ─── The queue and the effects ─────────────────────────────────────────────────────────────

  private event(decide: (m: ServiceMachine, now: number) => Result): void {
    void this.enqueue(() => this.apply(decide)).catch(() => undefined);
  }

  /** Runs tasks one at a time, in arrival order; none after the engine stopped. */
  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.stopped || !this.machine) throw new Stopped('the services engine has stopped');
      return task();
    });
    this.queue = run.then(
      () => undefined,
      (err: unknown) => {
        if (!(err instanceof Stopped) && !(err instanceof ServicesError)) this.ctx.log.error({ engine: this.name, err }, 'services: event failed');
      },
    );
    return run;
  }

  private async apply(decide: (m: ServiceMachine, now: number) => Result): Promise<Result> {
    const result = decide(this.machine!, this.now());
    for (const effect of result.effects) await this.perform(effect);
    this.scheduleForget();
    return result;
  }

  private async perform(e: ServiceEffect): Promise<void> {
    switch (e.kind) {
      case 'save':
        await this.durably(`service ${e.service.name}`, () => this.persist(e.service));
        return this.publishState(e.service);
      case 'placement':
        return this.publishPlacement(e);
      case 'lease': {
        const session = this.sessions.get(e.agent)?.session;
        if (session === undefined) return;
        const services: LeaseGrant['services'] = {};
        for (const r of e.runs) services[r.name] = { generation: r.generation, restarts: r.restarts, action: r.action, arg: r.arg ?? '' };
        const grant: LeaseGrant = { v: SCHEMA_VERSION, session, seq: e.a0, grantedAt: e.grantedAt, leaseMs: e.leaseMs, renewMs: e.renewMs, services };
        return publishAndForget(this.ctx, this.name, serviceLeaseTopic(e.agent), JSON.stringify(grant));
      }
      case 'wake':
        this.ctx.clock.clearTimeout(this.wakeTimer);
        this.wakeTimer = this.ctx.clock.setTimeout(() => this.event((m, now) => m.tick(now)), Math.max(0, e.at - this.now()));
    }
  }

  /**
   * A cancelled service is removed (the store keeps its generation as the fence of its name), but
   * only once no copy of it may still run: until then it stays stored with the fence in its history,
   * so a hub restart still waits for it before a service of that name is placed again.
   */
  private async persist(service: Service): Promise<void> {
    if (service.status !== 'cancelled') {
      await this.deps.store.save(service);
      this.kept.delete(service.name);
    } else if (latestFence(service, this.now())) {
      await this.deps.store.save(service);
      this.kept.add(service.name);
    } else {
      await this.deps.store.remove(service.name);
      this.kept.delete(service.name);
    }
  }

  private scheduleForget(): void {
    const fences = [...this.kept].map((name) => this.machine!.get(name)).map((s) => (s?.status === 'cancelled' ? latestFence(s, this.now())?.safeAt : undefined));
    this.ctx.clock.clearTimeout(this.forgetTimer);
    if (this.kept.size === 0) return;
    const at = Math.min(...fences.map((f) => f ?? this.now()));
    this.forgetTimer = this.ctx.clock.setTimeout(() => void this.enqueue(() => this.forget()).catch(() => undefined), Math.max(0, at - this.now()));
  }

  private async forget(): Promise<void> {
    for (const name of [...this.kept]) {
      const s = this.machine!.get(name);
      if (s?.status !== 'cancelled') this.kept.delete(name);
      else if (!latestFence(s, this.now())) await this.durably(`removal of service ${name}`, () => this.persist(s));
    }
    this.scheduleForget();
  }

  /** Runs a store write until it succeeds, blocking the queue; the engine is not ready meanwhile. */
  private async durably(what: string, write: () => Promise<void>): Promise<void> {
    for (let delay = STORE_RETRY_MS; ; delay = Math.min(2 * delay, STORE_RETRY_MAX_MS)) {
      try {
        await write();
        if (!this.ready) {
          this.ready = true;
          this.ctx.log.info({ engine: this.name }, 'services: the store works again; the engine is ready');
        }
        return;
      } catch (err) {
        if (err instanceof ServiceExistsError) throw new ServicesError('exists', err.message);
        if (this.ready) {
          this.ready = false;
          this.storeProblem = `the services store failed (${firstLine(err)})`;
          this.ctx.log.error({ engine: this.name, err: firstLine(err) }, `services: cannot store ${what}; not ready, retrying (agents stop their services as their leases lapse)`);
          for (const tell of this.waiting) tell(this.unavailable());
        }
        if (this.stopped) throw new Stopped(`stopped while storing ${what}`);
        await new Promise<void>((resolve) => {
          this.retryNow = resolve;
          this.ctx.clock.setTimeout(resolve, delay);
        });
      }
    }
  }

  private publishState(s: Service): void {
    const topic = serviceStateTopic(s.name);
    // A cancelled service is gone for operators at once, even while its fence keeps it stored.
    if (s.status === 'cancelled') return publishAndForget(this.ctx, this.name, topic, '', { qos: 1, retain: true });
    publishAndForget(this.ctx, this.name, topic, JSON.stringify(this.viewOf(s)), { qos: 1, retain: true });
  }

  private publishPlacement(p: Pick<ServicePlacement, 'name' | 'generation' | 'agent'>): void {
    const placement: ServicePlacement = { v: SCHEMA_VERSION, name: p.name, generation: p.generation, agent: p.agent };
    publishAndForget(this.ctx, this.name, servicePlacementTopic(p.name), JSON.stringify(placement), { qos: 1, retain: true });
  }

  // ─── ServicesApi ───────────────────────────────────────────────────────────────────────────

  async add(req: ServiceCreate, by: string): Promise<ServiceView> {
    return this.operate(async () => {
      const m = this.machine!;
      const old = m.get(req.name);
      if (old && old.status !== 'cancelled') throw new ServicesError('exists', `service ${req.name} exists (${old.status}); remove it first: pushfleet services rm ${req.name}`);
      const now = this.now();
      let stored = newService(req, m.nextSeq(), now);
      if (old && this.kept.has(req.name)) {
        // Its predecessor is still stored for its fence: the new one takes its row, fence and generation.
        stored = { ...stored, generation: old.generation, history: old.history };
        await this.durably(`service ${req.name}`, () => this.deps.store.save(stored));
        this.kept.delete(req.name);
      } else {
        await this.durably(`service ${req.name}`, async () => void (stored = await this.deps.store.create(stored)));
      }
      const result = await this.apply(() => m.create(stored, now));
      if (result.error) throw new ServicesError('invalid', result.error);
      this.ctx.log.info({ engine: this.name, service: req.name, action: req.action, by }, 'services: added');
      return this.viewOf(m.get(req.name)!);
    });
  }

  async remove(name: string, by: string): Promise<ServiceView> {
    return this.operate(async () => {
      const s = this.found(name);
      await this.apply((m, now) => m.cancel(name, now));
      this.ctx.log.info({ engine: this.name, service: name, by, status: s.status }, 'services: removed');
      return this.viewOf(s);
    });
  }

  async list(page: Page, status?: ServiceStatus): Promise<Paged<ServiceView>> {
    const all = this.started().list().filter((s) => status === undefined || s.status === status);
    return paged(all, page, (s) => this.viewOf(s));
  }

  async show(name: string): Promise<ServiceView> {
    this.started();
    return this.viewOf(this.found(name));
  }

  async servers(page: Page): Promise<Paged<ServerView>> {
    return paged(this.started().serverList(this.now()), page, serverView);
  }

  async logs(name: string, generation?: number): Promise<ServiceLogsView> {
    this.started();
    const s = this.found(name);
    const copy = generation === undefined ? (s.current ?? s.history[0]) : placementsOf(s).find((p) => p.generation === generation);
    if (!copy) throw new ServicesError('not-found', generation === undefined ? `service ${name} has not been placed yet` : `service ${name} has no placement of generation ${generation} (see pushfleet services show ${name})`);
    const out = this.outputs.get(name, copy.agent, copy.generation);
    if (!out) throw new ServicesError('not-found', `no output of service ${name} generation ${copy.generation} on ${copy.agent} has reached the hub`);
    return { name, agent: out.agent, generation: out.generation, restarts: out.restarts, at: out.at, output: out.output };
  }

  private started(): ServiceMachine {
    if (!this.machine) throw this.unavailable();
    return this.machine;
  }

  private found(name: string): Service {
    const s = this.started().get(name);
    if (!s || s.status === 'cancelled') throw new ServicesError('not-found', `no service ${name}: see pushfleet services ls`);
    return s;
  }

  private unavailable(): ServicesError {
    return new ServicesError('unavailable', `${this.storeProblem}; changes wait until it works again, try again then`);
  }

  /** A change, through the queue; answered "unavailable" at once if the store fails (the change is carried out once it works). */
  private operate<T>(task: () => Promise<T>): Promise<T> {
    if (!this.ready || !this.machine) return Promise.reject(this.unavailable());
    return new Promise<T>((resolve, reject) => {
      this.waiting.add(reject);
      this.enqueue(task)
        .then(resolve, reject)
        .finally(() => this.waiting.delete(reject));
    });
  }

  private viewOf(s: Service): ServiceView {
    const now = this.now();
    return serviceView(s, () => this.machine!.serverList(now), now);
  }
}

function paged<T, V>(all: readonly T[], page: Page, view: (t: T) => V): Paged<V> {
  return { items: all.slice(page.offset, page.offset + page.limit).map(view), total: all.length, offset: page.offset, limit: page.limit };
}

function endReason(s: AgentServiceState): string {
  // A refusal is worded once, by the machine (its agent's words may already start with "refused: ").
  if (s.state === 'refused') return s.reason ?? 'by the agent';
  if (s.reason) return s.reason;
  if (s.signal) return `killed by ${s.signal}`;
  return s.code === undefined || s.code === null ? 'ended' : `exit ${s.code}`;
}

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AgentServiceState, LeaseGrant, type AgentServicesOffer, type LeaseRenewal } from '../../src/shared/contract/services-messages.js';
import { SERVICE_OUTPUT_CHARS, type ServiceOutput } from '../../src/shared/contract/services-engine-messages.js';
import type { Logger } from '../../src/shared/logger.js';
import { decode, SCHEMA_VERSION } from '../../src/shared/messages.js';
import type { ActionsConfig } from '../action-config.js';
import { commandEnv } from '../command-env.js';
import { stopLeftover } from '../process-group.js';
import { launch } from '../run-command.js';
import { CopyGroups } from './copy-groups.js';
import { GenerationFile } from './generation-file.js';
import { LeaseHolder, type LeaseClock } from './lease-holder.js';
import { OutputTails } from './output-tails.js';
import { ServiceSupervisor, type CopyIds } from './service-supervisor.js';
import type { AgentServicesConfig } from './services-config.js';

/** What the services part needs from the agent's MQTT connection; the wiring publishes these on the topics it chooses. */
export type ServicesLink = {
  /** Publishes a renewal (QoS 1; one sent late only shortens the lease). */
  renew(request: LeaseRenewal): void;
  /** Publishes a copy's state (retained per service). */
  report(state: AgentServiceState): void;
  /** Publishes the tail of a copy's output (retained per service). */
  output(output: ServiceOutput): void;
  /** How many copies run here changed: the offer in the agent's status is out of date. */
  changed(): void;
};

export type AgentServices = {
  offer(): AgentServicesOffer;
  /** A grant's payload, once the signed inbox opened it; a malformed one is logged and changes nothing. */
  grant(payload: Buffer | string): void;
  /** `name`'s retained placement names another agent or none: a copy here of that generation or lower stops at once. */
  heard(name: string, generation: number): void;
  /** Whether placements of `name` concern this agent (it runs or ran it): the others need not even be verified. */
  knows(name: string): boolean;
  /** Stops renewing and every copy (the agent is stopping). */
  stop(): Promise<void>;
};

/** Until the first grant says how often. */
const FIRST_RENEW_MS = 500;

const monotonic: LeaseClock = { now: () => performance.now(), setTimeout: (fn, ms) => setTimeout(fn, ms).unref(), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };

/**
 * The agent's part of the hub's services engine, without MQTT: the supervisor runs the copies,
 * the lease holder decides which may run, and `link` carries renewals and states out. The agent's
 * MQTT wiring subscribes to the grant and placement topics and calls `grant` and `heard`. A copy
 * an earlier run of the agent left running is stopped (and reported ended) before the first
 * renewal: without a lease of this run, nothing may run.
 */
export async function startAgentServices(
  agent: { id: string; stateDir: string; actions: ActionsConfig; services: AgentServicesConfig },
  link: ServicesLink,
  log: Logger,
  clock: LeaseClock = monotonic,
): Promise<AgentServices> {
  const at = () => new Date().toISOString();
  const state = (exit: CopyIds, extra: Partial<AgentServiceState> & Pick<AgentServiceState, 'state'>): AgentServiceState => ({
    v: SCHEMA_VERSION,
    agent: agent.id,
    name: exit.name,
    generation: exit.generation,
    restarts: exit.restarts,
    at: at(),
    ...extra,
  });
  const groups = new CopyGroups(agent.stateDir);
  await stopLeftovers(groups, agent.services.stopTimeout, (ids, reason) => link.report(state(ids, { state: 'ended', code: null, signal: null, reason })), log);
  const tails = new OutputTails({
    clock,
    maxChars: SERVICE_OUTPUT_CHARS,
    publish: (ids, output) => link.output({ v: SCHEMA_VERSION, agent: agent.id, ...ids, at: at(), output }),
  });
  let running = 0;
  const recount = () => {
    if (supervisor.running().size === running) return;
    running = supervisor.running().size;
    link.changed();
  };
  let holder: LeaseHolder | undefined;
  const supervisor: ServiceSupervisor = new ServiceSupervisor({
    actions: agent.actions,
    services: agent.services,
    runtimeDir: join(agent.stateDir, 'services', 'run'),
    launch,
    env: (extra) => commandEnv({ PUSHFLEET_AGENT: agent.id, ...extra }),
    exited(exit) {
      const refused = exit.reason.startsWith('refused: ');
      if (!refused) tails.ended(exit);
      link.report(state(exit, { state: refused ? 'refused' : 'ended', code: exit.code, signal: exit.signal, reason: exit.reason.slice(0, 4096) }));
      holder?.exited();
      recount();
    },
    notified(name, copy) {
      link.report(state({ name, ...copy }, { state: copy.ready ? 'ready' : 'running', ...(copy.status !== undefined && { status: copy.status }) }));
      recount();
    },
    output: (ids, line) => tails.line(ids, line),
    groups,
    log,
  });
  holder = new LeaseHolder({
    agent: agent.id,
    session: randomBytes(8).toString('hex'),
    clock,
    copies: supervisor,
    generations: new GenerationFile(agent.stateDir),
    refused: (name, placement, reason) => link.report(state({ name, ...placement }, { state: 'refused', reason })),
    log,
  });
  let renewMs = FIRST_RENEW_MS;
  let timer: unknown;
  let stopped = false;
  const renew = () => {
    if (stopped) return;
    link.renew(holder.renewal());
    timer = clock.setTimeout(renew, renewMs);
  };
  renew();
  log.info({ actions: agent.services.actions, maxWorkers: agent.services.maxWorkers }, 'offering actions to the services engine');

  return {
    offer: () => ({
      actions: Object.fromEntries(agent.services.actions.map((name) => [name, { stopTimeoutMs: Math.ceil(agent.services.stopTimeout * 1000), ...(agent.actions[name]!.watchdogSec !== undefined && { watchdogSec: agent.actions[name]!.watchdogSec }) }])),
      maxWorkers: agent.services.maxWorkers,
      running: supervisor.running().size,
    }),
    grant(payload) {
      const grant = decode(LeaseGrant, payload);
      if (!grant.ok) return log.warn({ error: grant.error }, 'ignored malformed lease grant');
      renewMs = grant.value.renewMs;
      holder.granted(grant.value);
    },
    heard: (name, generation) => holder.heard(name, generation),
    knows: (name) => holder.knows(name),
    async stop() {
      stopped = true;
      clock.clearTimeout(timer);
      await supervisor.stopAll('the agent is stopping');
    },
  };
}

/** Stops each copy an earlier run of the agent recorded, and reports it ended; throws if one cannot be stopped (nothing is started then). */
async function stopLeftovers(groups: CopyGroups, stopTimeout: number, ended: (ids: CopyIds, reason: string) => void, log: Logger): Promise<void> {
  const graceMs = stopTimeout * 1000;
  for (const [name, copy] of groups.recorded()) {
    const done = await stopLeftover(copy.group, log.child({ service: name, generation: copy.generation }), { graceMs, giveUpMs: graceMs + 10_000, pollMs: 50 });
    ended({ name, generation: copy.generation, restarts: copy.restarts }, done ? `stopped: the agent restarted: ${done}` : 'ended with the previous run of the agent');
    groups.remove(name);
  }
}

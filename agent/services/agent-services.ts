import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AgentServiceState, LeaseGrant, type AgentServicesOffer, type LeaseRenewal } from '../../src/shared/contract/services-messages.js';
import type { Logger } from '../../src/shared/logger.js';
import { decode, SCHEMA_VERSION } from '../../src/shared/messages.js';
import type { ActionsConfig } from '../action-config.js';
import { commandEnv } from '../command-env.js';
import { launch } from '../run-command.js';
import { GenerationFile } from './generation-file.js';
import { LeaseHolder, type LeaseClock } from './lease-holder.js';
import { ServiceSupervisor, type ServiceExit } from './service-supervisor.js';
import type { AgentServicesConfig } from './services-config.js';

/** What the services part needs from the agent's MQTT connection; the wiring publishes these on the topics it chooses. */
export type ServicesLink = {
  /** Publishes a renewal (QoS 1; one sent late only shortens the lease). */
  renew(request: LeaseRenewal): void;
  /** Publishes a copy's state (retained per service). */
  report(state: AgentServiceState): void;
};

export type AgentServices = {
  offer(): AgentServicesOffer;
  /** A grant's payload, once the signed inbox opened it; a malformed one is logged and changes nothing. */
  grant(payload: Buffer | string): void;
  /** A placement of `name` on another agent (its retained placement): a lower copy here stops at once. */
  heard(name: string, generation: number): void;
  /** Stops renewing and every copy (the agent is stopping). */
  stop(): Promise<void>;
};

/** Until the first grant says how often. */
const FIRST_RENEW_MS = 500;

const monotonic: LeaseClock = { now: () => performance.now(), setTimeout: (fn, ms) => setTimeout(fn, ms).unref(), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };

/**
 * The agent's part of the hub's services engine, without MQTT: the supervisor runs the copies,
 * the lease holder decides which may run, and `link` carries renewals and states out. The agent's
 * MQTT wiring subscribes to the grant and placement topics and calls `grant` and `heard`.
 */
export function startAgentServices(
  agent: { id: string; stateDir: string; actions: ActionsConfig; services: AgentServicesConfig },
  link: ServicesLink,
  log: Logger,
  clock: LeaseClock = monotonic,
): AgentServices {
  const at = () => new Date().toISOString();
  const state = (exit: Pick<ServiceExit, 'name' | 'generation' | 'restarts'>, extra: Partial<AgentServiceState> & Pick<AgentServiceState, 'state'>): AgentServiceState => ({
    v: SCHEMA_VERSION,
    agent: agent.id,
    name: exit.name,
    generation: exit.generation,
    restarts: exit.restarts,
    at: at(),
    ...extra,
  });
  let holder: LeaseHolder | undefined;
  const supervisor = new ServiceSupervisor({
    actions: agent.actions,
    services: agent.services,
    runtimeDir: join(agent.stateDir, 'services', 'run'),
    launch,
    env: (extra) => commandEnv({ PUSHFLEET_AGENT: agent.id, ...extra }),
    exited(exit) {
      const refused = exit.reason.startsWith('refused: ');
      link.report(state(exit, { state: refused ? 'refused' : 'ended', code: exit.code, signal: exit.signal, reason: exit.reason.slice(0, 4096) }));
      holder?.exited();
    },
    notified: (name, copy) => link.report(state({ name, ...copy }, { state: copy.ready ? 'ready' : 'running', ...(copy.status !== undefined && { status: copy.status }) })),
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
    async stop() {
      stopped = true;
      clock.clearTimeout(timer);
      await supervisor.stopAll('the agent is stopping');
    },
  };
}

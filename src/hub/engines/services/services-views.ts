import type { PlacementView, ServerView, ServiceView } from '../../../shared/contract/services-engine-messages.js';
import { latestFence, type Placement, type Service, type ServiceServer } from './model.js';
import { matches } from './placement.js';

/** A server as the machine lists it for the monitor. */
export type ListedServer = ServiceServer & { used: number; services: string[] };

/** Hub times are epoch milliseconds (performance.timeOrigin + performance.now()). */
const iso = (ms: number): string => new Date(ms).toISOString();

export function placementView(p: Placement): PlacementView {
  return {
    agent: p.agent,
    generation: p.generation,
    restarts: p.restarts,
    placedAt: iso(p.placedAt),
    ...(p.runningAt !== undefined && { runningAt: iso(p.runningAt) }),
    ...(p.endedAt !== undefined && { endedAt: iso(p.endedAt) }),
    ...(p.endReason !== undefined && { endReason: p.endReason }),
  };
}

/** `servers` is asked only for a queued service's reason: listing them costs a pass over every service. */
export function serviceView(s: Service, servers: () => readonly ListedServer[], now: number): ServiceView {
  const reason = waitReason(s, servers, now);
  return {
    name: s.name,
    action: s.action,
    arg: s.arg ?? '',
    selector: s.selector,
    status: s.status,
    generation: s.generation,
    createdAt: iso(s.createdAt),
    ...(s.current && { current: placementView(s.current) }),
    history: s.history.map(placementView),
    ...(reason !== undefined && { reason }),
  };
}

export function serverView(s: ListedServer): ServerView {
  return { agent: s.agent, online: s.online, labels: s.labels, actions: Object.keys(s.actions).sort(), maxWorkers: s.maxWorkers, used: s.used, services: s.services };
}

/** Why a service waits (queued) or was moved (failing), in words an operator can act on. */
export function waitReason(s: Service, listServers: () => readonly ListedServer[], now: number): string | undefined {
  if (s.status === 'failing') return s.history[0]?.endReason;
  if (s.status !== 'queued') return undefined;
  const fence = latestFence(s, now);
  if (fence) return `waiting until ${iso(fence.safeAt!)} for its copy on ${fence.agent} to be stopped (${fence.endReason ?? 'ended'})`;
  const offering = listServers().filter((server) => server.online && server.actions[s.action] !== undefined);
  if (offering.length === 0) return `no live agent offers action ${s.action} (agent config services.actions)`;
  const fitting = offering.filter((server) => matches(s, server));
  if (fitting.length === 0) return `no live agent offering ${s.action} has the labels ${Object.entries(s.selector).map(([k, v]) => `${k}=${v}`).join(', ')}`;
  return `every agent that fits (${fitting.map((server) => server.agent).join(', ')}) runs its maxWorkers`;
}

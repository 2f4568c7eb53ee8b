import type { Service, ServiceServer } from './model.js';

/** What placement needs to know about a service waiting for an agent. */
export type QueueItem = Pick<Service, 'name' | 'seq' | 'action' | 'selector'> & {
  /** An agent not to use now (the one it just crash-looped on). */
  avoid?: string;
};

/**
 * Slots in use per agent: the placements the hub holds on it (stopping ones included) plus any
 * ended copy that may still run there (fenced, not yet confirmed stopped).
 */
export type Load = ReadonlyMap<string, number>;

export function matches(service: Pick<Service, 'action' | 'selector'>, server: ServiceServer): boolean {
  return server.online && server.actions[service.action] !== undefined && Object.entries(service.selector).every(([k, v]) => server.labels[k] === v);
}

/** Least loaded first: fewest slots used, then the lowest ratio to maxWorkers, then agent id (determinism). */
function lessLoaded(a: ServiceServer, b: ServiceServer, load: Load): number {
  const ua = load.get(a.agent) ?? 0;
  const ub = load.get(b.agent) ?? 0;
  if (ua !== ub) return ua - ub;
  const ra = ua / a.maxWorkers;
  const rb = ub / b.maxWorkers;
  if (ra !== rb) return ra - rb;
  return a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0;
}

/** The agent for one service, or undefined if it fits nowhere now. */
export function choosePlacement(service: QueueItem, servers: Iterable<ServiceServer>, load: Load): ServiceServer | undefined {
  let best: ServiceServer | undefined;
  for (const server of servers) {
    if (server.agent === service.avoid || !matches(service, server) || (load.get(server.agent) ?? 0) >= server.maxWorkers) continue;
    if (!best || lessLoaded(server, best, load) < 0) best = server;
  }
  return best;
}

/**
 * Places waiting services in creation order (seq) on the capacity there is now. A service that
 * fits nowhere does not block later ones: each service takes one slot and the earlier one had
 * first pick of every slot, so a later one only ever takes a slot the earlier one could not use
 * (another action, another selector, or a full agent). Creation order is kept without
 * head-of-line blocking by one service whose selector no live agent matches.
 */
export function planQueue(queue: readonly QueueItem[], servers: Iterable<ServiceServer>, load: Load): { name: string; agent: string }[] {
  const used = new Map(load);
  const all = [...servers];
  const plan: { name: string; agent: string }[] = [];
  for (const item of [...queue].sort((a, b) => a.seq - b.seq)) {
    const server = choosePlacement(item, all, used);
    if (!server) continue;
    used.set(server.agent, (used.get(server.agent) ?? 0) + 1);
    plan.push({ name: item.name, agent: server.agent });
  }
  return plan;
}

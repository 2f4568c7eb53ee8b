import { collectAgentMessage, emptySnapshot, type AgentEntry, type AgentMessage, type FleetBound } from '../../shared/fleet.js';
import type { AgentStatus, AppState, Heartbeat } from '../../shared/messages.js';
import { paged, type Paged } from './paged.js';

/** One app on one agent as the API shows it: the agent's retained app state without its envelope. */
export type AgentApp = Omit<AppState, 'v' | 'agent'>;

/** One agent as the API shows it (GET /api/v1/agents). */
export type AgentRow = {
  id: string;
  /** Its retained status says online (its last will turns it offline). */
  online: boolean;
  /** null: no status seen yet (only a heartbeat or app states). */
  state: AgentStatus['state'] | null;
  version: string | null;
  labels: Record<string, string>;
  startedAt: string | null;
  /** When the status was last published. */
  statusAt: string | null;
  hostFacts: Heartbeat['host'] | null;
  lastHeartbeat: string | null;
  jobs: AgentStatus['jobs'] | null;
  services: AgentStatus['services'] | null;
  apps: AgentApp[];
};

export type AgentFilter = { online?: boolean; labels?: Record<string, string> };

const byId = ([a]: [string, unknown], [b]: [string, unknown]) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The fleet as the agents' retained status, heartbeat and app states describe it, folded by the
 * same code as `pushfleet status` (shared/fleet.ts) and bounded by `bound` (new agents and apps
 * past it are ignored, as the rollouts engine does).
 */
export class FleetView {
  private readonly snapshot = emptySnapshot();

  constructor(private readonly bound: FleetBound) {}

  /** Files one agent message; what it was about, or undefined (not an agent topic, or refused by the bound). */
  take(topic: string, payload: Buffer): AgentMessage | undefined {
    return collectAgentMessage(this.snapshot, topic, payload, this.bound);
  }

  get size(): number {
    return this.snapshot.agents.size;
  }

  /** Every agent, by id. */
  entries(): [string, AgentEntry][] {
    return [...this.snapshot.agents].sort(byId);
  }

  list(filter: AgentFilter, page: { offset: number; limit: number }): Paged<AgentRow> {
    const rows = this.entries().filter(([, a]) => matches(a, filter));
    const out = paged(rows, page);
    return { ...out, items: out.items.map(([id, a]) => agentRow(id, a)) };
  }

  get(id: string): AgentRow | undefined {
    const entry = this.snapshot.agents.get(id);
    return entry && agentRow(id, entry);
  }

  /** Each agent that sent its status: online or not, and its labels (what /metrics breaks down). */
  *labelled(): Iterable<{ online: boolean; labels: Readonly<Record<string, string>> }> {
    for (const { status } of this.snapshot.agents.values()) if (status) yield { online: status.state === 'online', labels: status.labels };
  }

  app(agent: string, app: string): AppState | undefined {
    return this.snapshot.agents.get(agent)?.apps.get(app);
  }
}

function matches(a: AgentEntry, filter: AgentFilter): boolean {
  if (filter.online !== undefined && (a.status?.state === 'online') !== filter.online) return false;
  return Object.entries(filter.labels ?? {}).every(([k, v]) => a.status?.labels[k] === v);
}

export function agentRow(id: string, a: AgentEntry): AgentRow {
  const s = a.status;
  return {
    id,
    online: s?.state === 'online',
    state: s?.state ?? null,
    version: s?.version ?? null,
    labels: s?.labels ?? {},
    startedAt: s?.startedAt ?? null,
    statusAt: s?.at ?? null,
    hostFacts: a.heartbeat?.host ?? null,
    lastHeartbeat: a.heartbeat?.at ?? null,
    jobs: s?.jobs ?? null,
    services: s?.services ?? null,
    apps: [...a.apps.values()].sort((x, y) => (x.app < y.app ? -1 : x.app > y.app ? 1 : 0)).map(({ v: _v, agent: _agent, ...app }) => app),
  };
}

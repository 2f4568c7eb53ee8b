import { TopicContract } from './contract/topic-table.js';
import { AgentStatus, AppState, decode, Heartbeat } from './messages.js';

export type AgentEntry = { status?: AgentStatus; heartbeat?: Heartbeat; apps: Map<string, AppState> };
/** The fleet as the retained `pushfleet/agents/…` messages describe it. */
export type FleetSnapshot = { agents: Map<string, AgentEntry> };

export function emptySnapshot(): FleetSnapshot {
  return { agents: new Map() };
}

/** What an agent topic is about; `app` for app states. */
export type AgentMessage = { agent: string; kind: 'status' | 'heartbeat' | 'app'; app?: string };

/** Whether one more agent, or one more app of an agent, fits beside `size`: the bound of a long-lived snapshot. */
export type FleetBound = (table: 'agents' | 'apps', size: number, entry: string) => boolean;

// Agent topics do not depend on the semaphore prefix or seed root: the default table knows them.
const contract = new TopicContract();
const KINDS: Record<string, AgentMessage['kind']> = { 'agent.status': 'status', 'agent.heartbeat': 'heartbeat', 'agent.app': 'app' };

/** The agent and kind of `pushfleet/agents/{agent}/status|heartbeat|apps/{app}`, from the topic table. */
export function agentMessageOf(topic: string): AgentMessage | undefined {
  const found = contract.lookup(topic);
  const kind = found && KINDS[found.spec.name];
  if (!kind) return undefined;
  const { agent, app } = found.params;
  return kind === 'app' ? { agent: agent!, kind, app: app! } : { agent: agent!, kind };
}

/**
 * Files one agent message into the snapshot and says what it was about (undefined if the topic
 * is not an agent's, or `bound` refused a new agent or app). Malformed payloads are skipped; an
 * empty one clears what its topic held (an agent with nothing left is forgotten).
 */
export function collectAgentMessage(snapshot: FleetSnapshot, topic: string, payload: Buffer, bound?: FleetBound): AgentMessage | undefined {
  const msg = agentMessageOf(topic);
  if (!msg) return undefined;
  let entry = snapshot.agents.get(msg.agent);
  if (payload.length === 0) {
    // A cleared retained message (an agent taken out of service): forgotten, and the agent with its last part.
    if (!entry) return msg;
    if (msg.app !== undefined) entry.apps.delete(msg.app);
    else delete entry[msg.kind as 'status' | 'heartbeat'];
    if (!entry.status && !entry.heartbeat && entry.apps.size === 0) snapshot.agents.delete(msg.agent);
    return msg;
  }
  const d = decodeAgentMessage(msg, payload);
  if (!d) return msg;
  if (!entry) {
    if (bound && !bound('agents', snapshot.agents.size, msg.agent)) return undefined;
    entry = { apps: new Map() };
    snapshot.agents.set(msg.agent, entry);
  }
  if ('app' in d) {
    if (!entry.apps.has(d.app.app) && bound && !bound('apps', entry.apps.size, `${msg.agent}/${d.app.app}`)) return undefined;
    entry.apps.set(d.app.app, d.app);
  } else Object.assign(entry, d);
  return msg;
}

function decodeAgentMessage(msg: AgentMessage, payload: Buffer): { status: AgentStatus } | { heartbeat: Heartbeat } | { app: AppState } | undefined {
  if (msg.kind === 'status') {
    const d = decode(AgentStatus, payload);
    return d.ok ? { status: d.value } : undefined;
  }
  if (msg.kind === 'heartbeat') {
    const d = decode(Heartbeat, payload);
    return d.ok ? { heartbeat: d.value } : undefined;
  }
  const d = decode(AppState, payload);
  return d.ok ? { app: d.value } : undefined;
}

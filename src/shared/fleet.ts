import { AgentStatus, AppState, decode, Heartbeat } from './messages.js';
import { ROOT } from './topics.js';

export type AgentEntry = { status?: AgentStatus; heartbeat?: Heartbeat; apps: Map<string, AppState> };
/** The fleet as the retained `pushfleet/agents/…` messages describe it. */
export type FleetSnapshot = { agents: Map<string, AgentEntry> };

export function emptySnapshot(): FleetSnapshot {
  return { agents: new Map() };
}

const AGENT_TOPIC = new RegExp(`^${ROOT}/agents/([^/]+)/(status|heartbeat|apps/([^/]+))$`);

/**
 * Files one agent message into the snapshot and returns the agent id it concerns (undefined if
 * the topic is not an agent's). Malformed payloads are skipped; an empty one clears an app.
 */
export function collectAgentMessage(snapshot: FleetSnapshot, topic: string, payload: Buffer): string | undefined {
  const m = AGENT_TOPIC.exec(topic);
  if (!m) return undefined;
  const id = m[1]!;
  const agent: AgentEntry = snapshot.agents.get(id) ?? { apps: new Map() };
  snapshot.agents.set(id, agent);
  if (m[3] !== undefined && payload.length === 0) agent.apps.delete(m[3]);
  if (payload.length === 0) return id;
  if (m[2] === 'status') {
    const d = decode(AgentStatus, payload);
    if (d.ok) agent.status = d.value;
  } else if (m[2] === 'heartbeat') {
    const d = decode(Heartbeat, payload);
    if (d.ok) agent.heartbeat = d.value;
  } else {
    const d = decode(AppState, payload);
    if (d.ok) agent.apps.set(d.value.app, d.value);
  }
  return id;
}

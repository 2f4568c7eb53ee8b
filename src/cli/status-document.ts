import type { FleetSnapshot } from '../shared/fleet.js';
import type { AgentStatus, AppState, Heartbeat, HubStatus } from '../shared/messages.js';

/**
 * What `status --json` prints: one document, keys sorted, every field of the retained messages
 * as the agents and the hub sent them (null where none was seen). `v` changes only when a
 * field is removed or changes meaning.
 */
export type StatusDocument = {
  v: 1;
  hub: HubStatus | null;
  agents: Record<string, { status: AgentStatus | null; heartbeat: Heartbeat | null; apps: Record<string, AppState> }>;
};

const byKey = <T>(entries: Iterable<[string, T]>): [string, T][] => [...entries].sort(([a], [b]) => a.localeCompare(b));

export function statusDocument(snapshot: FleetSnapshot, hub: HubStatus | undefined): StatusDocument {
  return {
    v: 1,
    hub: hub ?? null,
    agents: Object.fromEntries(
      byKey(snapshot.agents).map(([id, a]) => [id, { status: a.status ?? null, heartbeat: a.heartbeat ?? null, apps: Object.fromEntries(byKey(a.apps)) }]),
    ),
  };
}

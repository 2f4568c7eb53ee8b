import type { AgentEntry, FleetSnapshot } from '../shared/fleet.js';
import { SCHEMA_VERSION, type AppState } from '../shared/messages.js';
import type { AgentRow } from '../hub/views/fleet-view.js';

/**
 * The fleet snapshot `pushfleet status` prints, rebuilt from GET /api/v1/agents: each agent's
 * status, heartbeat and app states as the agent retained them (the API drops only their `v` and
 * `agent`, which are put back), so the table and --json read the same as from the broker.
 */
export function snapshotOfAgents(rows: readonly AgentRow[]): FleetSnapshot {
  const agents = new Map<string, AgentEntry>();
  for (const row of rows) {
    const entry: AgentEntry = { apps: new Map(row.apps.map((app): [string, AppState] => [app.app, { v: SCHEMA_VERSION, agent: row.id, ...app }])) };
    if (row.state !== null && row.statusAt !== null) {
      entry.status = {
        v: SCHEMA_VERSION, agent: row.id, state: row.state, labels: row.labels, version: row.version ?? '', startedAt: row.startedAt, at: row.statusAt,
        ...(row.jobs && { jobs: row.jobs }), ...(row.services && { services: row.services }),
      };
    }
    if (row.hostFacts && row.lastHeartbeat) entry.heartbeat = { v: SCHEMA_VERSION, agent: row.id, at: row.lastHeartbeat, host: row.hostFacts };
    agents.set(row.id, entry);
  }
  return { agents };
}

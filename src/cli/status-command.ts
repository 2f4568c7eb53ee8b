import { Command } from 'commander';
import type { AgentRow } from '../hub/views/fleet-view.js';
import { collectAgentMessage, emptySnapshot, type FleetSnapshot } from '../shared/fleet.js';
import { decode, HubStatus } from '../shared/messages.js';
import { AGENTS_ALL, HUB_STATUS } from '../shared/topics.js';
import { parsePositiveNumber, runCommand } from './process-lifecycle.js';
import { connectFromFlags, withMqttFlags, type MqttFlags } from './mqtt-flags.js';
import { apiFromFlags, getAll, getJson, withApiFlags, type ApiFlags, type ApiTarget } from './api-request.js';
import { readStateThenClose } from './read-state.js';
import { snapshotOfAgents } from './status-from-api.js';
import { renderStatusTable } from './status-table.js';
import { statusDocument } from './status-document.js';

/**
 * Columns to fit the table to: COLUMNS when set, else the terminal's; none when stdout is a pipe
 * or a file, so `pushfleet status | grep 404` sees every error whole.
 */
export function tableWidth(env: NodeJS.ProcessEnv, stdout: { isTTY?: boolean; columns?: number }): number | undefined {
  const fromEnv = Number(env.COLUMNS);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  return stdout.isTTY && stdout.columns ? stdout.columns : undefined;
}

const JSON_HELP = `
--json prints one document: {"v": 1, "hub": <hub status or null>, "agents": {"<id>": {"status":
<status or null>, "heartbeat": <heartbeat or null>, "apps": {"<app>": <app state>}}}}, keys sorted,
each message whole as its sender retained it (src/shared/messages.ts: HubStatus, AgentStatus,
Heartbeat, AppState). The table fits the terminal (COLUMNS, when set, wins): other columns are
cut with "…" and ERROR is wrapped, never cut; piped, nothing is cut.

With --api the same state is read from the hub's REST API (GET /api/v1/agents and /api/v1/hub)
instead of the broker: the table and --json read the same.`;

/** The agents' and the hub's retained state, from the broker. */
async function fromBroker(flags: MqttFlags & { wait: number }): Promise<{ snapshot: FleetSnapshot; hub?: HubStatus }> {
  const snapshot = emptySnapshot();
  let hub: HubStatus | undefined;
  const client = await connectFromFlags(flags, flags.wait);
  await readStateThenClose(client, [AGENTS_ALL, HUB_STATUS], (topic, payload) => {
    if (topic !== HUB_STATUS) return void collectAgentMessage(snapshot, topic, payload);
    const d = decode(HubStatus, payload);
    if (d.ok) hub = d.value;
  });
  return { snapshot, hub };
}

/** The same, from the hub's REST API. */
async function fromApi(api: ApiTarget): Promise<{ snapshot: FleetSnapshot; hub?: HubStatus }> {
  // The hub answers 503 for its own status until it has read it back: then the table says none, as from the broker.
  const [rows, hub] = await Promise.all([getAll<AgentRow>(api, '/agents'), getJson<unknown>(api, '/hub').catch(() => undefined)]);
  const d = HubStatus.safeParse(hub);
  return { snapshot: snapshotOfAgents(rows), ...(d.success && { hub: d.data }) };
}

export function statusCommand(): Command {
  return withApiFlags(withMqttFlags(new Command('status')))
    .description("print a table of agents and their apps, from the retained state on the broker (or the hub's REST API, --api)")
    .option('--json', 'print the whole state as one JSON document (shape below) instead of a table')
    .option('--wide', 'print every column uncut, whole SHAs, whatever the terminal width')
    .option('--wait <seconds>', 'how long to wait for the broker to answer', parsePositiveNumber, 5)
    .addHelpText('after', JSON_HELP)
    .action((flags: MqttFlags & ApiFlags & { json?: boolean; wide?: boolean; wait: number }) =>
      runCommand(async () => {
        const api = apiFromFlags(flags, flags.wait);
        const { snapshot, hub } = api ? await fromApi(api) : await fromBroker(flags);
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(statusDocument(snapshot, hub), null, 2)}\n`);
        } else {
          process.stdout.write(renderStatusTable(snapshot, new Date(), { wide: flags.wide, width: tableWidth(process.env, process.stdout) }));
          process.stdout.write(hub ? `\nhub: ${hub.state} since ${hub.state === 'online' ? hub.startedAt : hub.at} (pushfleet ${hub.version})\n` : '\nhub: no status on this broker (is `pushfleet hub` running on it?)\n');
        }
      }),
    );
}

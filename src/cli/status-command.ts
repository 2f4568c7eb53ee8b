import { Command } from 'commander';
import { AgentStatus, AppState, decode, Heartbeat } from '../shared/messages.js';
import { AGENTS_ALL, ROOT } from '../shared/topics.js';
import { parsePositiveNumber, runCommand } from './process-lifecycle.js';
import { connectFromFlags, withMqttFlags, type MqttFlags } from './mqtt-flags.js';
import { emptySnapshot, renderStatusTable, type AgentEntry, type FleetSnapshot } from './status-table.js';

const AGENT_TOPIC = new RegExp(`^${ROOT}/agents/([^/]+)/(status|heartbeat|apps/([^/]+))$`);

/** Files one retained agent message into the snapshot; malformed ones are skipped. */
function collect(snapshot: FleetSnapshot, topic: string, payload: Buffer): void {
  const m = AGENT_TOPIC.exec(topic);
  if (!m || payload.length === 0) return;
  const agent: AgentEntry = snapshot.agents.get(m[1]!) ?? { apps: new Map() };
  snapshot.agents.set(m[1]!, agent);
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
}

export function statusCommand(): Command {
  return withMqttFlags(new Command('status'))
    .description('print a table of agents and their apps, from the retained state on the broker')
    .option('--json', 'print the raw state as JSON instead of a table')
    .option('--wait <seconds>', 'how long to wait for the broker to answer', parsePositiveNumber, 5)
    .action((flags: MqttFlags & { json?: boolean; wait: number }) =>
      runCommand(async () => {
        const snapshot = emptySnapshot();
        const client = await connectFromFlags(flags, flags.wait);
        client.on('message', (topic, payload) => collect(snapshot, topic, payload));
        await client.subscribeAsync(AGENTS_ALL, { qos: 1 });
        // Retained messages arrive right after SUBACK; a round trip to our own topic marks their end.
        const marker = `${ROOT}/cli/${client.options.clientId}`;
        await client.subscribeAsync(marker);
        await new Promise<void>((resolve) => {
          client.on('message', (topic) => topic === marker && resolve());
          void client.publishAsync(marker, 'done');
        });
        await client.endAsync();
        if (flags.json) {
          const plain = Object.fromEntries([...snapshot.agents].map(([id, a]) => [id, { ...a, apps: Object.fromEntries(a.apps) }]));
          process.stdout.write(`${JSON.stringify(plain, null, 2)}\n`);
        } else {
          process.stdout.write(renderStatusTable(snapshot));
        }
      }),
    );
}

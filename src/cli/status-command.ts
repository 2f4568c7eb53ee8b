import { Command } from 'commander';
import { collectAgentMessage, emptySnapshot } from '../shared/fleet.js';
import { decode, HubStatus } from '../shared/messages.js';
import { AGENTS_ALL, HUB_STATUS } from '../shared/topics.js';
import { parsePositiveNumber, runCommand } from './process-lifecycle.js';
import { connectFromFlags, withMqttFlags, type MqttFlags } from './mqtt-flags.js';
import { readStateThenClose } from './read-state.js';
import { renderStatusTable } from './status-table.js';

export function statusCommand(): Command {
  return withMqttFlags(new Command('status'))
    .description('print a table of agents and their apps, from the retained state on the broker')
    .option('--json', 'print the raw state as JSON instead of a table')
    .option('--wait <seconds>', 'how long to wait for the broker to answer', parsePositiveNumber, 5)
    .action((flags: MqttFlags & { json?: boolean; wait: number }) =>
      runCommand(async () => {
        const snapshot = emptySnapshot();
        let hub: HubStatus | undefined;
        const client = await connectFromFlags(flags, flags.wait);
        await readStateThenClose(client, [AGENTS_ALL, HUB_STATUS], (topic, payload) => {
          if (topic !== HUB_STATUS) return void collectAgentMessage(snapshot, topic, payload);
          const d = decode(HubStatus, payload);
          if (d.ok) hub = d.value;
        });
        if (flags.json) {
          const plain = Object.fromEntries([...snapshot.agents].map(([id, a]) => [id, { ...a, apps: Object.fromEntries(a.apps) }]));
          process.stdout.write(`${JSON.stringify(plain, null, 2)}\n`);
        } else {
          process.stdout.write(renderStatusTable(snapshot));
          process.stdout.write(hub ? `\nhub: ${hub.state} since ${hub.state === 'online' ? hub.startedAt : hub.at} (pushfleet ${hub.version})\n` : '\nhub: no status on this broker (is `pushfleet hub` running on it?)\n');
        }
      }),
    );
}

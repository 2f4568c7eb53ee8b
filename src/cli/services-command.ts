import { Command } from 'commander';
import type { z } from 'zod';
import type { ServicesReply, ServiceStatusName } from '../shared/contract/services-engine-messages.js';
import { withMqttFlags, type MqttFlags } from './mqtt-flags.js';
import { askEngine } from './mqtt-request.js';
import { EXIT, parsePositiveNumber, runCommand } from './process-lifecycle.js';
import { actionArg, generationArg, limitArg, offsetArg, selectorArg, serviceArgArg, serviceNameArg, statusArg } from './services-args.js';
import { SERVICES, type ServicesOp } from './services-request.js';
import { servicesTable, serversTable, serviceText } from './services-view.js';
import { tableWidth } from './status-command.js';

type Flags = MqttFlags & { wait: number; json?: boolean };
type PageFlags = Flags & { offset?: number; limit?: number };

/** One request to the hub's services engine; a refusal is the command's one-line error (exit 1). */
const ask = (flags: Flags, op: ServicesOp): Promise<ServicesReply> => askEngine(flags, SERVICES, op);

const json = (value: unknown): number => (process.stdout.write(`${JSON.stringify(value, null, 2)}\n`), EXIT.ok);
const width = (): number | undefined => tableWidth(process.env, process.stdout);
const page = (flags: PageFlags) => ({ ...(flags.offset !== undefined && { offset: flags.offset }), ...(flags.limit !== undefined && { limit: flags.limit }) });

async function add(name: string, flags: Flags & { action: string; arg?: string; selector?: Record<string, string> }): Promise<number> {
  const service = (await ask(flags, { op: 'add', service: { name, action: flags.action, arg: flags.arg ?? '', selector: flags.selector ?? {} } })).service!;
  if (flags.json) return json(service);
  process.stdout.write(`service ${service.name} added: ${service.status}${service.reason ? ` (${service.reason})` : ''}\n`);
  return EXIT.ok;
}

async function rm(name: string, flags: Flags): Promise<number> {
  const service = (await ask(flags, { op: 'rm', name })).service!;
  if (flags.json) return json(service);
  process.stdout.write(`service ${service.name}: ${service.status === 'cancelled' ? 'removed' : `${service.status} (removed once its copy on ${service.current?.agent ?? 'its agent'} has stopped)`}\n`);
  return EXIT.ok;
}

async function ls(flags: PageFlags & { status?: z.infer<typeof ServiceStatusName> }): Promise<number> {
  const services = (await ask(flags, { op: 'ls', page: page(flags), ...(flags.status && { status: flags.status }) })).services!;
  if (flags.json) return json(services);
  process.stdout.write(servicesTable(services, width()));
  return EXIT.ok;
}

async function show(name: string, flags: Flags): Promise<number> {
  const service = (await ask(flags, { op: 'show', name })).service!;
  if (flags.json) return json(service);
  process.stdout.write(serviceText(service, width()));
  return EXIT.ok;
}

async function logs(name: string, flags: Flags & { generation?: number }): Promise<number> {
  const view = (await ask(flags, { op: 'logs', name, ...(flags.generation !== undefined && { generation: flags.generation }) })).logs!;
  if (flags.json) return json(view);
  // Which copy it was goes to stderr, so stdout is the output itself.
  process.stderr.write(`${view.name} generation ${view.generation} on ${view.agent} (${view.restarts} restarts), as of ${view.at}:\n`);
  process.stdout.write(view.output);
  return EXIT.ok;
}

async function servers(flags: PageFlags): Promise<number> {
  const found = (await ask(flags, { op: 'servers', page: page(flags) })).servers!;
  if (flags.json) return json(found);
  process.stdout.write(serversTable(found, width()));
  return EXIT.ok;
}

/** `pushfleet services …`: the services engine (engines.services), over the hub's MQTT request topic (operator only). */
export function servicesCommand(): Command {
  const services = new Command('services').description(
    'services (engines.services): long-running processes of agent actions, kept running exactly once on some live agent. Exit 0 done, 1 the hub refused (its reason printed) or did not answer, 2 bad usage',
  );
  const sub = (name: string, description: string) =>
    withMqttFlags(services.command(name).description(description))
      .option('--wait <seconds>', 'how long to wait for the broker and the hub', parsePositiveNumber, 5)
      .option('--json', "print the hub's answer as JSON");
  const paged = (cmd: Command) => cmd.option('--offset <n>', 'skip this many first', offsetArg).option('--limit <n>', 'at most this many (1-1000; default 50)', limitArg);
  sub('add', 'create a service: the hub places it on the least-loaded live agent that offers the action and has the labels, or queues it until one does')
    .argument('<name>', 'unique name: 1-63 lowercase letters, digits or "-"', serviceNameArg)
    .requiredOption('--action <action>', "the action to run, from the agents' config (actions:, offered under services:)", actionArg)
    .option('--arg <string>', 'its argument: PUSHFLEET_SERVICE_ARG, and its last argument if the action has lastArgument', serviceArgArg)
    .option('--selector <k=v>', 'a label the agent must have (repeatable)', selectorArg)
    .action((name: string, flags: Parameters<typeof add>[1]) => runCommand(() => add(name, flags)));
  sub('rm', "cancel a service in any state, queued ones included: a running copy gets SIGTERM, then SIGKILL after its agent's services.stopTimeout")
    .argument('<name>', 'service name', serviceNameArg)
    .action((name: string, flags: Flags) => runCommand(() => rm(name, flags)));
  paged(sub('ls', 'the services, in creation order: status, generation, agent, and why one waits or fails'))
    .option('--status <status>', 'only services in this status (queued, placed, running, restarting, failing, stopping, cancelled)', statusArg)
    .action((flags: Parameters<typeof ls>[0]) => runCommand(() => ls(flags)));
  sub('show', 'one service: its settings, status, current placement and placement history')
    .argument('<name>', 'service name', serviceNameArg)
    .action((name: string, flags: Flags) => runCommand(() => show(name, flags)));
  sub('logs', "the tail of a service's output (stdout and stderr) as its agent last published it")
    .argument('<name>', 'service name', serviceNameArg)
    .option('--generation <g>', 'of this generation (an earlier placement) rather than the current one', generationArg)
    .action((name: string, flags: Flags & { generation?: number }) => runCommand(() => logs(name, flags)));
  paged(sub('servers', 'the agents offering services: online or not, slots used of maxWorkers, actions, labels, services'))
    .action((flags: PageFlags) => runCommand(() => servers(flags)));
  return services;
}

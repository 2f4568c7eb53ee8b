#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';
import type { Command as CommandType } from 'commander';

// An agent idles on every machine for hours and runs little JavaScript: with only the interpreter
// (no optimizing compilers, no baseline compiler) it takes ~8 MB less memory (their code in the
// node binary is never paged in, no machine code is kept). Set before any other module is even
// resolved (the loader's own functions are the first to get hot), so everything else is imported
// after it.
if (process.argv[2] === 'agent') setFlagsFromString('--no-turbofan --no-maglev --no-sparkplug');
const { Command } = await import('commander');
const { exitOnCommanderError } = await import('./process-lifecycle.js');
const { VERSION } = await import('../shared/version.js');

/**
 * Each subcommand's module, loaded only when it runs: an agent (on every machine) then does not load
 * the hub's broker, web server, engines and their clients. Help and unknown names load them all.
 */
const commands: Record<string, () => Promise<CommandType>> = {
  hub: async () => (await import('./hub-command.js')).hubCommand(),
  agent: async () => (await import('./agent-command.js')).agentCommand(),
  status: async () => (await import('./status-command.js')).statusCommand(),
  notify: async () => (await import('./notify-command.js')).notifyCommand(),
  keys: async () => (await import('./keys-command.js')).keysCommand(),
  play: async () => (await import('./play-command.js')).playCommand(),
  sem: async () => (await import('./sem-command.js')).semCommand(),
  rollout: async () => (await import('./rollout-command.js')).rolloutCommand(),
  jobs: async () => (await import('./jobs-command.js')).jobsCommand(),
  services: async () => (await import('./services-command.js')).servicesCommand(),
  retry: async () => (await import('./retry-command.js')).retryCommand(),
  explain: async () => (await import('./explain-command.js')).explainCommand(),
  users: async () => (await import('./users-command.js')).usersCommand(),
  doctor: async () => (await import('./doctor-command.js')).doctorCommand(),
  audit: async () => (await import('./audit-command.js')).auditCommand(),
};
const named = process.argv[2];
const wanted = named !== undefined && Object.hasOwn(commands, named) ? [named] : Object.keys(commands);

const program = new Command('pushfleet')
  .description('GitOps fleet updater: push to a branch, every machine following it updates itself')
  .version(VERSION)
  .showHelpAfterError()
  .exitOverride(exitOnCommanderError);
for (const command of await Promise.all(wanted.map((name) => commands[name]!()))) program.addCommand(command);
// Usage errors exit 2, in subcommands (`rollout pause …`) too.
const usageExit = (cmd: CommandType): void => {
  cmd.exitOverride(exitOnCommanderError);
  cmd.commands.forEach(usageExit);
};
program.commands.forEach(usageExit);

await program.parseAsync(process.argv);

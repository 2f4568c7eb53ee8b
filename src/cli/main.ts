#!/usr/bin/env node
import { Command } from 'commander';
import { agentCommand } from './agent-command.js';
import { hubCommand } from './hub-command.js';
import { jobsCommand } from './jobs-command.js';
import { keysCommand } from './keys-command.js';
import { notifyCommand } from './notify-command.js';
import { playCommand } from './play-command.js';
import { explainCommand } from './explain-command.js';
import { doctorCommand } from './doctor-command.js';
import { retryCommand } from './retry-command.js';
import { rolloutCommand } from './rollout-command.js';
import { semCommand } from './sem-command.js';
import { servicesCommand } from './services-command.js';
import { statusCommand } from './status-command.js';
import { usersCommand } from './users-command.js';
import { exitOnCommanderError } from './process-lifecycle.js';
import { VERSION } from '../shared/version.js';

const program = new Command('pushfleet')
  .description('GitOps fleet updater: push to a branch, every machine following it updates itself')
  .version(VERSION)
  .showHelpAfterError()
  .exitOverride(exitOnCommanderError)
  .addCommand(hubCommand())
  .addCommand(agentCommand())
  .addCommand(statusCommand())
  .addCommand(notifyCommand())
  .addCommand(keysCommand())
  .addCommand(playCommand())
  .addCommand(semCommand())
  .addCommand(rolloutCommand())
  .addCommand(jobsCommand())
  .addCommand(servicesCommand())
  .addCommand(retryCommand())
  .addCommand(explainCommand())
  .addCommand(usersCommand())
  .addCommand(doctorCommand());
// Usage errors exit 2, in subcommands (`rollout pause …`) too.
const usageExit = (cmd: Command): void => {
  cmd.exitOverride(exitOnCommanderError);
  cmd.commands.forEach(usageExit);
};
program.commands.forEach(usageExit);

await program.parseAsync(process.argv);

import { Command } from 'commander';
import { addJobsRequestCommands } from './jobs-request-commands.js';

/** `pushfleet jobs …`: the jobs engine's table and runs (src/hub/engines/jobs/README.md). */
export function jobsCommand(): Command {
  const cmd = new Command('jobs').description('the jobs engine: its table, runs, logs; trigger a job (see src/hub/engines/jobs/README.md)');
  addJobsRequestCommands(cmd);
  return cmd;
}

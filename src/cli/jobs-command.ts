import { Command } from 'commander';
import { ConfigError } from '../shared/config-file.js';
import { parseTable, TableError } from '../hub/engines/jobs/table.js';
import { ownTopicProblem } from '../hub/engines/jobs/trigger-topics.js';
import { TopicContract } from '../shared/contract/topic-table.js';
import { loadHubConfig } from './hub-command.js';
import { addJobsRequestCommands } from './jobs-request-commands.js';
import { EXIT, runCommand } from './process-lifecycle.js';

/** `pushfleet jobs …`: the jobs engine's table and runs. Each part adds its subcommands with one register function. */
export function jobsCommand(): Command {
  const jobs = new Command('jobs').description('the jobs engine (engines.jobs): an MQTT message starts a Kubernetes Job or an agent action, its completion chains the next');
  addCheckCommand(jobs);
  addJobsRequestCommands(jobs);
  return jobs;
}

type CheckFlags = { config?: string; table?: string };

/** `jobs check`: reads the table where the hub would and judges every row as the engine would, without a hub or broker. */
export function addCheckCommand(jobs: Command): void {
  jobs
    .command('check')
    .description('read the jobs table (engines.jobs.table, or --table) and report every bad row with its line; exit 0 all rows valid, 1 some refused, 2 table or config unreadable')
    .option('-c, --config <file>', 'hub YAML config: engines.jobs.table, .prefix and .s3 (see config/hub.example.yaml)')
    .option('--table <location>', 'check this table instead: a file path, https:// URL or s3://bucket/key')
    .action((flags: CheckFlags) => runCommand(() => check(flags)));
}

async function check(flags: CheckFlags): Promise<number> {
  const jobs = loadHubConfig({ ...(flags.config !== undefined && { config: flags.config }) }).engines.jobs;
  const location = flags.table ?? jobs.table;
  if (location === undefined) throw new ConfigError(`engines.jobs.table is not set in ${flags.config ?? '(no config)'}: set it or pass --table`);
  // Loaded here, not at the top: the S3 client would add its load time to every pushfleet command.
  const { openTableSource, TableSourceError } = await import('../hub/engines/jobs/table-source.js');
  let table;
  try {
    const text = await openTableSource(location, { s3: jobs.s3 }).read();
    if (text === 'unchanged') throw new Error('a first read has no version to be unchanged from');
    const contract = new TopicContract({ jobsPrefix: jobs.prefix });
    table = { text, parsed: parseTable(text.text, text.format, { prefix: jobs.prefix, refuse: (row) => ownTopicProblem(contract, jobs.prefix, row.mqttTopic) }) };
  } catch (err) {
    if (!(err instanceof TableSourceError || err instanceof TableError)) throw err;
    process.stderr.write(`pushfleet: ${err instanceof TableError ? `${location}: ` : ''}${err.message}\n`);
    return EXIT.usage;
  }
  const { rows, errors } = table.parsed;
  for (const e of errors) process.stdout.write(`line ${e.line}: ${e.jobName !== undefined ? `${e.jobName}: ` : ''}${e.reason}\n`);
  const total = rows.length + errors.length;
  process.stdout.write(`${location} (${table.text.format}): ${rows.length} of ${total} ${total === 1 ? 'row' : 'rows'} valid${errors.length ? `, ${errors.length} refused` : ''}\n`);
  return errors.length ? EXIT.failure : EXIT.ok;
}

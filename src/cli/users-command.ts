import { hostname } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { HubConfig } from '../hub/config.js';
import { generateCredential, hashPassword } from '../hub/users/password-hash.js';
import { defaultUsersFile, newUser, readUsers, UserName, writeUsers } from '../hub/users/users-file.js';
import { readConfigFile, validateConfig } from '../shared/config-file.js';
import { mosquittoAcl } from '../shared/contract/mosquitto-acl.js';
import { ROLES, type Role } from '../shared/contract/roles.js';
import { TopicContract } from '../shared/contract/topic-table.js';
import { SEED_DEFAULT_ROOT } from '../shared/topics.js';
import { defaultStateDir } from '../shared/default-state-dir.js';
import { checkedArg, CommandError, EXIT, exitOnCommanderError, runCommand } from './process-lifecycle.js';
import { formatTable } from './text-table.js';

type FileFlags = { config?: string; usersFile?: string };
type AddFlags = FileFlags & { role: Role; passwordStdin?: boolean };

const nameArg = checkedArg((v) => UserName.safeParse(v).success, '1–128 letters, digits, ".", "_" or "-" (an agent account is named by its agent id)');

/** The hub settings `users` needs: where the file is, and what an agent's config should say. */
function hubSide(flags: FileFlags): { file: string; config?: HubConfig } {
  const config = flags.config ? validateConfig(HubConfig, readConfigFile(flags.config), flags.config) : undefined;
  const stateDir = config?.stateDir ?? defaultStateDir('pushfleet');
  return { file: flags.usersFile ?? config?.broker.usersFile ?? defaultUsersFile(stateDir), config };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split('\n', 1)[0]!.replace(/\r$/, '');
}

async function add(name: string, flags: AddFlags): Promise<number> {
  const { file, config } = hubSide(flags);
  const exists = () => {
    if (readUsers(file).has(name)) throw new CommandError(`user "${name}" already exists in ${file}; remove it first with "pushfleet users rm ${name}" to give it a new password`);
  };
  exists();
  const given = flags.passwordStdin ? await readStdin() : undefined;
  if (given !== undefined && given.length < 12) throw new CommandError('the password from stdin is shorter than 12 characters');
  const { password, hash } = given === undefined ? generateCredential() : { password: given, hash: await hashPassword(given) };
  // Read again after the slow hash, and written at once: an edit made meanwhile is kept.
  exists();
  const users = readUsers(file);
  users.set(name, newUser(flags.role, hash));
  writeUsers(file, users);
  const out: string[] = [`added ${flags.role} "${name}" to ${file}; the hub's broker takes it within a second, without a restart`];
  if (given === undefined) out.push('', `password (shown only now): ${password}`);
  if (flags.role === 'operator' || flags.role === 'viewer') out.push('', `HTTP API token (Authorization: Bearer …): ${name}:${given === undefined ? password : '<the password>'}`);
  if (flags.role === 'agent') out.push('', ...agentConfigLines(name, config));
  process.stdout.write(`${out.join('\n')}\n`);
  return EXIT.ok;
}

/** The lines an agent's config needs to log in as `name` and check the hub's signatures. */
function agentConfigLines(name: string, config: HubConfig | undefined): string[] {
  const broker = config?.broker;
  const host = !broker || ['127.0.0.1', '0.0.0.0', 'localhost'].includes(broker.host) ? hostname() : broker.host;
  const url = broker?.tls ? `mqtts://${host}:${broker.tls.port}` : `mqtt://${host}:${broker?.port ?? 1883}`;
  const stateDir = config?.stateDir ?? defaultStateDir('pushfleet');
  return [
    `On the agent's machine, put the password alone in a file only the agent's user can read`,
    `(e.g. /etc/pushfleet/mqtt-password, mode 0600), and in its agent config:`,
    '',
    `id: ${name}`,
    'mqtt:',
    `  url: ${url}`,
    `  username: ${name}`,
    '  passwordFile: /etc/pushfleet/mqtt-password',
    `hubPublicKey: /etc/pushfleet/hub.pub   # a copy of ${join(stateDir, 'hub.pub')} from the hub`,
  ];
}

function rm(name: string, flags: FileFlags): number {
  const { file } = hubSide(flags);
  const users = readUsers(file);
  if (!users.delete(name)) throw new CommandError(`no user "${name}" in ${file}`);
  writeUsers(file, users);
  process.stdout.write(`removed "${name}" from ${file}; its live broker sessions are closed\n`);
  return EXIT.ok;
}

function ls(flags: FileFlags): number {
  const { file } = hubSide(flags);
  const users = [...readUsers(file)];
  if (users.length === 0) {
    process.stdout.write(`no users in ${file}\n`);
    return EXIT.ok;
  }
  process.stdout.write(formatTable(['NAME', 'ROLE', 'CREATED'], users.map(([name, u]) => [name, u.role, u.created])));
  return EXIT.ok;
}

/** A mosquitto acl_file granting the users file's accounts what the built-in roles grant them. */
function acl(flags: FileFlags & { seedRoot: string }): number {
  const { file, config } = hubSide(flags);
  const users = [...readUsers(file)].map(([name, u]) => ({ name, role: u.role }));
  if (users.length === 0) throw new CommandError(`no users in ${file}; add them first with "pushfleet users add"`);
  const contract = new TopicContract({ semaphorePrefix: config?.engines.semaphore.prefix, seedRoot: flags.seedRoot, jobsPrefix: config?.engines.jobs.prefix });
  process.stdout.write(mosquittoAcl(contract, users));
  return EXIT.ok;
}

const fileFlags = (cmd: Command): Command =>
  cmd
    .option('-c, --config <file>', "the hub's config: its broker.usersFile, else <stateDir>/users.json")
    .option('--users-file <file>', 'the users file itself (default: the hub\'s default state directory\'s users.json)');

export function usersCommand(): Command {
  const addCmd = fileFlags(new Command('add'))
    .description('add a broker account; prints a generated password once (or takes one from stdin)')
    .argument('<name>', 'account name; an agent account is named by its agent id', nameArg)
    .addOption(new Option('--role <role>', 'what the account may do (see README "Security model")').choices(ROLES).makeOptionMandatory())
    .option('--password-stdin', 'read the password from the first line of stdin instead of generating one')
    .action((name: string, flags: AddFlags) => runCommand(() => add(name, flags)));
  const rmCmd = fileFlags(new Command('rm'))
    .description('remove a broker account; the hub closes its live sessions')
    .argument('<name>', 'account name', nameArg)
    .action((name: string, flags: FileFlags) => runCommand(async () => rm(name, flags)));
  const lsCmd = fileFlags(new Command('ls'))
    .description('list broker accounts: name, role, created (never a password or hash)')
    .action((flags: FileFlags) => runCommand(async () => ls(flags)));
  const aclCmd = fileFlags(new Command('acl'))
    .description("print a mosquitto acl_file equivalent to the built-in roles, for the users file's accounts (see config/mosquitto/)")
    .option('--seed-root <topic>', "the agents' orchestrator.root (seed playbook topics)", SEED_DEFAULT_ROOT)
    .action((flags: FileFlags & { seedRoot: string }) => runCommand(async () => acl(flags)));
  const users = new Command('users')
    .description("manage the embedded broker's accounts (the users file the hub reads)")
    .addHelpText('after', '\nExit codes: 0 done, 1 failed (no such user, already exists), 2 bad usage or a damaged users file.')
    .addCommand(addCmd)
    .addCommand(rmCmd)
    .addCommand(lsCmd)
    .addCommand(aclCmd);
  for (const cmd of [users, addCmd, rmCmd, lsCmd, aclCmd]) cmd.exitOverride(exitOnCommanderError);
  return users;
}

import Database from 'better-sqlite3';
import { Command } from 'commander';
import type { AuditEntry } from '../hub/audit/audit-entry.js';
import { AuditReader } from '../hub/audit/audit-reader.js';
import { HubConfig } from '../hub/config.js';
import { stateDbFile } from '../hub/state-db.js';
import { readConfigFile, validateConfig } from '../shared/config-file.js';
import { defaultStateDir } from '../shared/default-state-dir.js';
import { StartupError } from '../shared/startup.js';
import { parseSince } from './audit-since.js';
import { everyItem, hubApiFromFlags, withApiFlags, type ApiFlags } from './hub-api.js';
import { EXIT, runCommand } from './process-lifecycle.js';

type AuditFlags = ApiFlags & { since?: number; local?: boolean };

const PAGE = 500;

const HELP = `
Prints the hub's audit log as JSON lines, oldest first: webhook deliveries and pushes from
\`pushfleet notify\` (accepted, duplicate, rejected and why), rollout actions, freezes, pins,
retries, job triggers, service changes and refused logins. Each line: {"id", "at", "lastAt",
"count", "kind", "via", "who", "identity", "address", "action", "target", "outcome", "reason"};
"count" > 1 is that many identical entries within a minute, from "at" to "lastAt". "identity"
says how "who" is known: token (an API token), mqtt-account (the embedded broker's login),
claimed (what an MQTT request says: with an external broker the hub cannot know who published
it), github (a signed push's pusher), none.

Where it reads:
  the hub's API (default)  GET /api/v1/audit, with a viewer or operator token:
                             PUSHFLEET_TOKEN=ci-bot:<password> pushfleet audit --hub http://hub:3000 --since 7d
                           on the hub's host, -c finds its port and the operator credentials:
                             pushfleet audit -c /etc/pushfleet/hub.yaml --since 1h
  --local                  the hub's state database on this host, read-only (the hub need not run):
                             pushfleet audit --local -c /etc/pushfleet/hub.yaml

Exit codes: 0 printed (perhaps nothing), 1 failed (hub unreachable, or it refused the token or
the request), 2 bad usage (a bad --since or config, no state database where --local looks).`;

export function auditCommand(): Command {
  return withApiFlags(new Command('audit'))
    .description("print the hub's audit log as JSON lines (from its API, or with --local its state on this host)")
    .option('--since <time>', 'only entries from then on: an ISO time (2026-12-01T10:00:00Z), a date, or a duration back from now (30m, 1h, 7d)', (v: string) => parseSince(v, Date.now()))
    .option('--local', "read the hub's state database on this host (-c: its config) instead of its API")
    .addHelpText('after', HELP)
    .action((flags: AuditFlags) => runCommand(() => printAudit(flags)));
}

async function printAudit(flags: AuditFlags): Promise<number> {
  if (flags.local && (flags.hub !== undefined || flags.tokenFile !== undefined)) throw new StartupError('--local reads the state on this host: give it without --hub and --token-file', EXIT.usage);
  const since = flags.since === undefined ? undefined : new Date(flags.since).toISOString();
  const entries = flags.local ? localEntries(flags.config, flags.since) : hubApiFromFlags(flags).all<AuditEntry>('/audit', { since }, PAGE);
  for await (const entry of entries) process.stdout.write(`${JSON.stringify(entry)}\n`);
  return EXIT.ok;
}

/** The entries of the hub's state database on this host, read-only, as GET /api/v1/audit pages them (entries added meanwhile come at the end). */
async function* localEntries(config: string | undefined, since: number | undefined): AsyncGenerator<AuditEntry> {
  const stateDir = config ? validateConfig(HubConfig, readConfigFile(config), config).stateDir : defaultStateDir('pushfleet');
  const file = stateDbFile(stateDir);
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new StartupError(`cannot read the hub's state database ${file} (${(err as Error).message}): run --local on the hub's host as its user${config ? '' : ' with -c <its config>'}, or read its API without --local`, EXIT.usage);
  }
  try {
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").get() !== undefined;
    if (!hasTable) return void process.stderr.write(`pushfleet: no audit log in ${file} yet (the hub has not run since it has one)\n`);
    const reader = new AuditReader(db);
    yield* everyItem((offset) => reader.list({ since, offset, limit: PAGE }));
  } finally {
    db.close();
  }
}

import Database from 'better-sqlite3';
import { Command } from 'commander';
import type { AuditEntry } from '../hub/audit/audit-entry.js';
import { AuditReader, type AuditPage } from '../hub/audit/audit-reader.js';
import { HubConfig } from '../hub/config.js';
import { stateDbFile } from '../hub/state-db.js';
import { readConfigFile, validateConfig } from '../shared/config-file.js';
import { defaultStateDir } from '../shared/default-state-dir.js';
import { StartupError } from '../shared/startup.js';
import { parseSince } from './audit-since.js';
import { CommandError, EXIT, runCommand } from './process-lifecycle.js';

type AuditFlags = { since?: number; hub?: string; token?: string; config?: string };

const PAGE = 500;
const HTTP_TIMEOUT_MS = 10_000;

const HELP = `
Prints the hub's audit log as JSON lines, oldest first: webhook deliveries and pushes from
\`pushfleet notify\` (accepted, duplicate, rejected and why), rollout actions, freezes, pins, retries, job triggers, service changes and
refused logins. Each line: {"id", "at", "lastAt", "count", "kind", "via", "who", "identity",
"address", "action", "target", "outcome", "reason"}; "count" > 1 is that many identical entries
within a minute, from "at" to "lastAt". "identity" says how "who" is known: token (an API token),
mqtt-account (the embedded broker's login), claimed (what an MQTT request says: with an external
broker the hub cannot know who published it), github (a signed push's pusher), none.

Where it reads:
  on the hub's machine   the hub's state database, read-only (the hub need not run):
                           pushfleet audit -c /etc/pushfleet/hub.yaml --since 1h
                         (without -c: the default state directory)
  from anywhere          the hub's API, with a token of role viewer or operator:
                           PUSHFLEET_TOKEN=ci-bot:<password> pushfleet audit --hub http://hub:3000 --since 7d

Exit codes: 0 printed (perhaps nothing), 1 failed (hub unreachable, a server error; trying again
may work), 2 a person must act (bad usage, no or refused token, no state database there).`;

export function auditCommand(): Command {
  return new Command('audit')
    .description("print the hub's audit log as JSON lines (from its API, or its state on this machine)")
    .option('--since <time>', 'only entries from then on: an ISO time (2026-12-01T10:00:00Z), a date, or a duration back from now (30m, 1h, 7d)', (v: string) => parseSince(v, Date.now()))
    .option('--hub <url>', "the hub's HTTP address, to read its API (default: PUSHFLEET_HUB; neither: read the state on this machine)")
    .option('--token <name:password>', 'API token for --hub (default: PUSHFLEET_TOKEN; prefer it, a flag shows in ps)')
    .option('-c, --config <file>', "the hub's config, to find its state directory (without --hub)")
    .addHelpText('after', HELP)
    .action((flags: AuditFlags) => runCommand(() => printAudit(flags)));
}

async function printAudit(flags: AuditFlags): Promise<number> {
  // An empty variable counts as unset (`PUSHFLEET_HUB= pushfleet audit`).
  const hub = flags.hub ?? (process.env.PUSHFLEET_HUB || undefined);
  if (hub !== undefined && flags.config !== undefined) throw usage('give either --hub (read the API) or -c (read the state on this machine), not both');
  const read = hub !== undefined ? apiPages(hub, flags.token ?? (process.env.PUSHFLEET_TOKEN || undefined), flags.since) : localPages(flags.config, flags.since);
  for await (const items of read) {
    if (items.length) process.stdout.write(`${items.map((e) => JSON.stringify(e)).join('\n')}\n`);
  }
  return EXIT.ok;
}

const usage = (message: string): StartupError => new StartupError(message, EXIT.usage);

/** Pages until the offset reaches the total the hub gave; entries added meanwhile come at the end. */
async function* pages(next: (offset: number) => Promise<AuditPage> | AuditPage): AsyncGenerator<AuditEntry[]> {
  for (let offset = 0; ; ) {
    const page = await next(offset);
    yield page.items;
    offset += page.items.length;
    if (page.items.length === 0 || offset >= page.total) return;
  }
}

function localPages(config: string | undefined, since: number | undefined): AsyncGenerator<AuditEntry[]> {
  const stateDir = config ? validateConfig(HubConfig, readConfigFile(config), config).stateDir : defaultStateDir('pushfleet');
  const file = stateDbFile(stateDir);
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw usage(`cannot read the hub's state database ${file} (${(err as Error).message}): run this on the hub's machine as its user${config ? '' : ' with -c <its config>'}, or read its API with --hub <url>`);
  }
  const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").get() !== undefined;
  if (!hasTable) {
    db.close();
    process.stderr.write(`pushfleet: no audit log in ${file} yet (the hub has not run since it has one)\n`);
    return pages(() => ({ items: [], total: 0, offset: 0, limit: PAGE }));
  }
  const reader = new AuditReader(db);
  return (async function* () {
    try {
      yield* pages((offset) => reader.list({ since, offset, limit: PAGE }));
    } finally {
      db.close();
    }
  })();
}

function apiPages(hub: string, token: string | undefined, since: number | undefined): AsyncGenerator<AuditEntry[]> {
  let base: URL;
  try {
    base = new URL('/api/v1/audit', hub);
  } catch {
    throw usage(`--hub ${hub}: expected the hub's HTTP address, like http://hub.example:3000`);
  }
  if (!/^https?:$/.test(base.protocol)) throw usage(`--hub ${hub}: expected an http:// or https:// address`);
  if (!token) throw usage('reading the hub\'s API needs a token: PUSHFLEET_TOKEN=<name>:<password> (make one with "pushfleet users add <name> --role viewer" on the hub)');
  return pages(async (offset) => {
    const url = new URL(base);
    if (since !== undefined) url.searchParams.set('since', new Date(since).toISOString());
    url.searchParams.set('offset', String(offset));
    url.searchParams.set('limit', String(PAGE));
    let res: Response;
    try {
      res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    } catch (err) {
      throw new CommandError(`cannot reach the hub at ${base.origin}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
    }
    const body = (await res.json().catch(() => undefined)) as (AuditPage & { error?: string }) | undefined;
    if (res.status === 401 || res.status === 403) throw usage(`the hub refused the token (${res.status}): ${body?.error ?? res.statusText}`);
    if (res.status !== 200 || !body || !Array.isArray(body.items)) throw new CommandError(`the hub answered ${res.status}: ${body?.error ?? 'not an audit page'}`);
    return body;
  });
}

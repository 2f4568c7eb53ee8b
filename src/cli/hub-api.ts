import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { readConfigFile, validateConfig } from '../shared/config-file.js';
import { defaultStateDir } from '../shared/default-state-dir.js';
import { readOperatorCredentials } from '../hub/users/operator-credential.js';
import { CommandError } from './process-lifecycle.js';

export type ApiFlags = { config?: string; hub?: string; tokenFile?: string };

/** Adds the flags of a command that reads the hub's REST API. */
export function withApiFlags(cmd: Command): Command {
  return withHubFlags(cmd.option('-c, --config <file>', "the hub's config: its http port on this host, and the operator credentials in its stateDir"));
}

/** --hub and --token-file alone, for a command that takes -c already (with the broker flags: it reads the broker unless --hub is given). */
export function withHubFlags(cmd: Command): Command {
  return cmd
    .option('--hub <url>', "the hub's HTTP URL, e.g. https://hub.example:3000 (default PUSHFLEET_HUB, else the config's http port on 127.0.0.1)")
    .option('--token-file <file>', 'a file holding the API token name:password (default PUSHFLEET_TOKEN, else the hub\'s operator credentials on this host)');
}

const HasHttp = z.looseObject({
  http: z.looseObject({ host: z.string().optional(), port: z.number().int().optional() }).optional(),
  stateDir: z.string().optional(),
});

const TOKEN = /^[^:\s]{1,128}:[\x21-\x7e]{1,900}$/;

/**
 * The hub a command reads and its token. The URL: --hub, PUSHFLEET_HUB, the config's http port on
 * this host, else http://127.0.0.1:3000. The token, first found: --token-file, PUSHFLEET_TOKEN, the
 * hub's operator.credentials (config's stateDir, else the default ones) when this user can read it.
 * A token is never taken from a flag's value, where `ps` would show it.
 */
export function hubApiFromFlags(flags: ApiFlags): HubApi {
  const file = flags.config ? validateConfig(HasHttp, readConfigFile(flags.config), flags.config) : undefined;
  const host = !file?.http?.host || file.http.host === '0.0.0.0' ? '127.0.0.1' : file.http.host;
  const raw = flags.hub ?? process.env.PUSHFLEET_HUB ?? `http://${host}:${file?.http?.port ?? 3000}`;
  let base: URL;
  try {
    base = new URL(raw);
  } catch {
    throw new CommandError(`--hub: "${raw.slice(0, 200)}" is not a URL; give the hub's HTTP URL, e.g. http://hub.example:3000`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new CommandError(`--hub: ${base.protocol} is not taken; give an http:// or https:// URL`);
  return new HubApi(base, tokenOf(flags, file?.stateDir));
}

function tokenOf(flags: ApiFlags, stateDir: string | undefined): string {
  const check = (token: string, source: string): string => {
    if (!TOKEN.test(token)) throw new CommandError(`${source}: not an API token; expected name:password (pushfleet users add <name> --role viewer prints one)`);
    return token;
  };
  if (flags.tokenFile) {
    let text: string;
    try {
      text = readFileSync(flags.tokenFile, 'utf8');
    } catch (err) {
      throw new CommandError(`--token-file: cannot read ${flags.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return check(text.trim(), `--token-file ${flags.tokenFile}`);
  }
  if (process.env.PUSHFLEET_TOKEN) return check(process.env.PUSHFLEET_TOKEN.trim(), 'PUSHFLEET_TOKEN');
  for (const dir of stateDir ? [stateDir] : [defaultStateDir('pushfleet'), '/var/lib/pushfleet']) {
    const found = readOperatorCredentials(dir);
    if (found) return `${found.username}:${found.password}`;
  }
  throw new CommandError(`no API token: give --token-file <file> or PUSHFLEET_TOKEN (name:password of a viewer or operator account), or run on the hub's host with -c <hub config> (looked for ${join(stateDir ?? defaultStateDir('pushfleet'), 'operator.credentials')})`);
}

type Paged<T> = { items: T[]; total: number; offset: number; limit: number };

/** Every item of a paged list (`{items, total}` from `page(offset)`), page after page, until the offset reaches the total. */
export async function* everyItem<T>(page: (offset: number) => Paged<T> | Promise<Paged<T>>): AsyncGenerator<T> {
  for (let offset = 0; ; ) {
    const { items, total } = await page(offset);
    yield* items;
    offset += items.length;
    if (items.length === 0 || offset >= total) return;
  }
}

/** The hub's REST API as a command uses it: every failure a CommandError of one line. */
export class HubApi {
  constructor(
    readonly base: URL,
    private readonly token: string,
    private readonly timeoutMs = 10_000,
  ) {}

  get<T>(path: string, query: Record<string, string | undefined> = {}): Promise<T> {
    return this.call<T>('GET', path, query);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.call<T>('POST', path, {}, body);
  }

  /** Every item of a list, page after page (a list that changes meanwhile may repeat or skip one at a page edge). */
  all<T>(path: string, query: Record<string, string | undefined> = {}, limit = 500): AsyncGenerator<T> {
    return everyItem((offset) => this.get<Paged<T>>(path, { ...query, offset: String(offset), limit: String(limit) }));
  }

  private async call<T>(method: string, path: string, query: Record<string, string | undefined>, body?: unknown): Promise<T> {
    const url = new URL(`api/v1${path}`, this.base.href.endsWith('/') ? this.base : `${this.base.href}/`);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    const where = `${method} ${url.pathname}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${this.token}`, accept: 'application/json', ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
      throw new CommandError(`cannot reach the hub at ${this.base.origin} (${where}): ${cause === 'TimeoutError' ? `no answer within ${this.timeoutMs / 1000} s` : cause}`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new CommandError(`the hub at ${this.base.origin} answered ${where} with ${res.status} and no JSON: is --hub the hub's HTTP address?`);
    }
    if (res.ok) return parsed as T;
    const error = (parsed as { error?: unknown } | undefined)?.error;
    throw new CommandError(`the hub refused ${where} (${res.status}): ${typeof error === 'string' ? error.slice(0, 500) : 'no reason given'}`);
  }
}

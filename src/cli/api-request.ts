import type { Command } from 'commander';
import { CommandError } from './process-lifecycle.js';

/** How a command reads the hub's REST API instead of the broker: its URL and a token (viewer is enough to read). */
export type ApiFlags = { api?: string; token?: string };

export const TOKEN_ENV = 'PUSHFLEET_TOKEN';

/** Adds --api and --token to a command that can read through the hub's REST API. */
export function withApiFlags(cmd: Command): Command {
  return cmd
    .option('--api <hub-url>', "read through the hub's REST API at this URL (http://hub:8080) instead of the broker")
    .option('--token <token>', `API token <name>:<password> of a viewer or operator (pushfleet users add); default ${TOKEN_ENV}, which keeps it out of the process list`);
}

export type ApiTarget = { base: URL; token: string; timeoutMs: number };

/** The API a command reads from, or undefined without --api; a bad URL or a missing token is the command's one-line error. */
export function apiFromFlags(flags: ApiFlags, waitSeconds: number, env: NodeJS.ProcessEnv = process.env): ApiTarget | undefined {
  if (flags.api === undefined) return undefined;
  let base: URL;
  try {
    base = new URL(flags.api);
  } catch {
    throw new CommandError(`--api ${flags.api}: not a URL (expected http://host:port of the hub)`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new CommandError(`--api ${flags.api}: expected an http:// or https:// URL of the hub`);
  const token = flags.token ?? env[TOKEN_ENV];
  if (!token) throw new CommandError(`--api needs a token: --token <name>:<password> or ${TOKEN_ENV} (pushfleet users add <name> --role viewer prints one)`);
  return { base, token, timeoutMs: waitSeconds * 1000 };
}

/** GET one API path as JSON; an answer other than 200 is a CommandError with the hub's own one-line error. */
export async function getJson<T>(api: ApiTarget, path: string): Promise<T> {
  const url = new URL(`api/v1${path}`, api.base.href.endsWith('/') ? api.base : `${api.base.href}/`);
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${api.token}`, accept: 'application/json' }, signal: AbortSignal.timeout(api.timeoutMs) });
  } catch (err) {
    const cause = (err as Error).name === 'TimeoutError' ? `no answer within ${api.timeoutMs / 1000} s` : ((err as { cause?: Error }).cause?.message ?? (err as Error).message);
    throw new CommandError(`hub API ${api.base.origin} unreachable: ${cause}`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CommandError(`hub API ${url.pathname}: answered ${res.status} with no JSON (is ${api.base.origin} a pushfleet hub?)`);
  }
  if (res.status !== 200) throw new CommandError(`hub API ${url.pathname}: ${(body as { error?: string }).error ?? `HTTP ${res.status}`} (HTTP ${res.status})`);
  return body as T;
}

/** Every item of a paged list, a page of 1000 at a time. */
export async function getAll<T>(api: ApiTarget, path: string): Promise<T[]> {
  const items: T[] = [];
  for (;;) {
    const page = await getJson<{ items: T[]; total: number }>(api, `${path}${path.includes('?') ? '&' : '?'}offset=${items.length}&limit=1000`);
    items.push(...page.items);
    if (page.items.length === 0 || items.length >= page.total) return items;
  }
}

import { createHmac, randomBytes } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from '../../shared/logger.js';
import { LoginThrottle, LogLimit } from '../broker/rate-limits.js';
import { NO_SUCH_USER, verifyPassword } from '../users/password-hash.js';
import type { Users } from '../users/users-file.js';
import type { Role } from '../../shared/contract/roles.js';
import { sendError } from './api-error.js';
import type { LoginRefusal } from '../users/login-refusal.js';

export const CHALLENGE = 'Basic realm="pushfleet"';
export const BEARER_CHALLENGE = 'Bearer realm="pushfleet"';

export type ApiAuthOptions = {
  /** The hub's users as they are now (the users file, reloaded when it changes). */
  users(): Users;
  log: Logger;
  now?: () => number;
  /** How long a verified user:password is taken again without scrypt (~50 ms each). */
  cacheMs?: number;
  /** Failures per client address before it must wait (429), doubling from baseMs up to maxMs. */
  throttle?: { free: number; baseMs: number; maxMs: number; forgetMs: number; maxAddresses: number };
  /** The password check (scrypt); a test passes its own to count checks. */
  verify?: typeof verifyPassword;
  /** Told of every refused login (wrong or unknown credentials), e.g. for the audit log. */
  onRefused?: (refusal: LoginRefusal) => void;
};

/** What the API lets a caller do: viewers read, operators also act. */
export type ApiRole = 'viewer' | 'operator';
export type Caller = { readonly name: string; readonly role: ApiRole };

/** The API role of each account role; others (hub, agent, client) have none. */
const API_ROLE: Partial<Record<Role, ApiRole>> = { operator: 'operator', viewer: 'viewer' };

const CACHE_ENTRIES = 1000;
/** scrypt checks under way at once, all clients together: beyond it 429, so a flood cannot take every core. */
const MAX_CHECKING = 4;
const DEFAULT_THROTTLE = { free: 5, baseMs: 1000, maxMs: 60_000, forgetMs: 600_000, maxAddresses: 10_000 };

type Verified = { name: string; hash: string; until: number };

/**
 * The REST API's door, with the broker's accounts: a token is `name:password` of a users-file
 * account of role operator or viewer, sent as `Authorization: Bearer <token>` (or as HTTP Basic).
 * Each answer names one cause: 401 (with the challenge) for no or wrong credentials, 403 for a
 * valid account without the role the route needs, 429 when the client's address failed too often or too
 * many checks are under way. Passwords are checked by scrypt in constant time; an unknown name
 * costs the same check. A success is remembered for cacheMs under an HMAC of the credentials (a
 * per-process key, so the cache holds nothing a guesser could test offline), and only while the
 * account keeps the same password hash.
 */
export class ApiAuth {
  private readonly key = randomBytes(32);
  private readonly verified = new Map<string, Verified>();
  private readonly throttle: LoginThrottle;
  private readonly logLimit = new LogLimit();
  private readonly now: () => number;
  private readonly cacheMs: number;
  private checking = 0;

  constructor(private readonly opts: ApiAuthOptions) {
    this.now = opts.now ?? Date.now;
    this.cacheMs = opts.cacheMs ?? 60_000;
    this.throttle = new LoginThrottle(opts.throttle ?? DEFAULT_THROTTLE);
  }

  /** Tells the audit log of a login refused outside this class (a stream ticket that is no good). */
  refused(refusal: LoginRefusal): void {
    this.opts.onRefused?.(refusal);
  }

  /** Lets the request on only with a token of `role` (an operator's does for viewer); sets `res.locals.caller`. */
  require(role: ApiRole): RequestHandler {
    return (req, res, next) => {
      this.authenticate(role, req, res, next).catch(next);
    };
  }

  private async authenticate(needed: ApiRole, req: Request, res: Response, next: NextFunction): Promise<void> {
    const credentials = tokenCredentials(req.headers.authorization);
    if (!credentials) return void challenge(req, res, 'an API token is required: Authorization: Bearer <name>:<password> of a hub user with role viewer or operator (pushfleet users add)');
    const address = req.socket.remoteAddress ?? 'unknown';
    const name = await this.verify(credentials, address, req, res);
    if (name === null) return;
    const role = this.opts.users().get(name)?.role;
    const apiRole = role && API_ROLE[role];
    if (!apiRole) {
      // A right password of an agent or client account: someone holds a broker credential and tries it here.
      this.refused({ name, address, reason: 'not an API account' });
      return void sendError(res, 403, 'forbidden', `user "${name}" has role ${role}: the API takes operator and viewer accounts only`);
    }
    const caller: Caller = { name, role: apiRole };
    res.locals.caller = caller;
    if (needed === 'operator') requireOperator(req, res, next);
    else next();
  }

  /** The account's name when the credentials are right; otherwise the refusal is sent and null returned. */
  private async verify({ user, password }: Credentials, address: string, req: Request, res: Response): Promise<string | null> {
    const now = this.now();
    const cacheKey = createHmac('sha256', this.key).update(user).update('\0').update(password).digest('base64');
    const entry = this.opts.users().get(user);
    const cached = this.verified.get(cacheKey);
    if (cached && cached.until > now && entry?.password.hash === cached.hash) return cached.name;
    if (cached) this.verified.delete(cacheKey);
    const wait = this.throttle.retryInMs(address, now);
    if (wait > 0 || this.checking >= MAX_CHECKING) {
      const seconds = Math.max(1, Math.ceil(wait / 1000));
      // Recorded although no password was checked: a guesser's flood shows in the audit log (coalesced there).
      this.refused({ name: user.slice(0, 128), address, reason: wait > 0 ? 'throttled after failed logins' : 'too many logins being checked' });
      res.set('retry-after', String(seconds));
      sendError(res, 429, 'too-many-requests', wait > 0 ? `too many failed logins from ${address}: retry in ${seconds} s` : 'too many logins being checked at once: retry in a second');
      return null;
    }
    this.checking++;
    let matches: boolean;
    try {
      matches = await (this.opts.verify ?? verifyPassword)(password, entry?.password ?? NO_SUCH_USER);
    } finally {
      this.checking--;
    }
    if (entry && matches) {
      this.throttle.succeeded(address);
      this.remember(cacheKey, { name: user, hash: entry.password.hash, until: now + this.cacheMs });
      return user;
    }
    const failures = this.throttle.failed(address, this.now());
    const reason = entry ? 'wrong password' : 'no such user';
    this.refused({ name: user.slice(0, 128), address, reason });
    // The name is logged (it may be a typo of a real one), the password never.
    const suppressed = this.logLimit.allow(`login:${address}`, now);
    if (suppressed !== null) this.opts.log.warn({ address, user: user.slice(0, 128), failures, suppressed, reason }, 'API refused a login');
    challenge(req, res, 'wrong user name or password');
    return null;
  }

  private remember(cacheKey: string, verified: Verified): void {
    this.verified.set(cacheKey, verified);
    if (this.verified.size > CACHE_ENTRIES) this.verified.delete(this.verified.keys().next().value!);
  }
}

/** Who made the request: set by `require`, so a route behind it always has one. */
export const callerOf = (res: Response): Caller => res.locals.caller as Caller;

/** Behind `require('viewer')`: lets only an operator on (actions), else a 403 naming the account. */
export const requireOperator: RequestHandler = (_req, res, next) => {
  const { name, role } = callerOf(res);
  if (role === 'operator') return next();
  sendError(res, 403, 'forbidden', `user "${name}" is a viewer: this takes an operator`);
};

type Credentials = { user: string; password: string };

/**
 * user and password of an `Authorization: Bearer <name>:<password>` or `Basic <base64>` header
 * (the password may hold ':'; a name cannot), or undefined.
 */
export function tokenCredentials(header: string | undefined): Credentials | undefined {
  const bearer = /^Bearer +([\x21-\x7e]{1,1024})$/i.exec(header ?? '');
  const match = bearer ? undefined : /^Basic +([A-Za-z0-9+/]{1,1400}={0,2})$/i.exec(header ?? '');
  if (!bearer && !match) return undefined;
  const text = bearer ? bearer[1]! : Buffer.from(match![1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * A 401 with its challenge: Bearer to a client that sent a Bearer token (a browser shows its own
 * login dialog for a Basic challenge, over the page's), Basic to anyone else (curl -u, scripts).
 */
function challenge(req: Request, res: Response, message: string): void {
  res.set('www-authenticate', /^Bearer\b/i.test(req.headers.authorization ?? '') ? BEARER_CHALLENGE : CHALLENGE);
  sendError(res, 401, 'unauthorized', message);
}

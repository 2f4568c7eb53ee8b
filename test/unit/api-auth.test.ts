import type { NextFunction, Request, Response } from 'express';
import { describe, expect, it } from 'vitest';
import { ApiAuth, tokenCredentials, type ApiRole } from '../../src/hub/api/api-auth.js';
import type { LoginRefusal } from '../../src/hub/users/login-refusal.js';
import type { PasswordHash } from '../../src/hub/users/password-hash.js';
import type { UserEntry } from '../../src/hub/users/users-file.js';
import { createLogger } from '../../src/shared/logger.js';

const hash = (h: string): PasswordHash => ({ alg: 'scrypt', N: 16_384, r: 8, p: 1, salt: 'c2FsdHNhbHRzYWx0c2FsdA==', hash: h.padEnd(44, 'A') });
const entry = (role: UserEntry['role'], h: string): UserEntry => ({ role, password: hash(h), created: '2026-12-01T00:00:00Z' });

/** An ApiAuth over `users` with a manual clock and a password check that counts its calls (right password: "pw-" + hash). */
function harness(users: Map<string, UserEntry>) {
  let now = 0;
  const checks: string[] = [];
  const refused: LoginRefusal[] = [];
  let release: (() => void)[] = [];
  let hold = false;
  const auth = new ApiAuth({
    users: () => users,
    log: createLogger('test', 'silent'),
    now: () => now,
    cacheMs: 60_000,
    verify: async (password, stored) => {
      checks.push(password);
      if (hold) await new Promise<void>((resolve) => release.push(resolve));
      return password === `pw-${stored.hash}`;
    },
    onRefused: (r) => refused.push(r),
  });
  /** One request through the handler: its status (200 when it reached next) and what it answered. */
  const send = (user: string, password: string, address = '10.0.0.1', opts: { role?: ApiRole; bearer?: boolean } = {}) =>
    new Promise<{ statusCode: number; headers: Record<string, string>; body: unknown; locals: Record<string, unknown> }>((resolve, reject) => {
      const res = { statusCode: 200, headers: {} as Record<string, string>, body: undefined as unknown, locals: {} as Record<string, unknown> };
      const r = Object.assign(res, {
        set: (k: string, v: string) => ((res.headers[k] = v), r),
        status: (n: number) => ((res.statusCode = n), r),
        json: (b: unknown) => ((res.body = b), resolve(res), r),
      });
      const authorization = opts.bearer ? `Bearer ${user}:${password}` : `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      const req = { headers: { authorization }, socket: { remoteAddress: address } };
      const next: NextFunction = (err?: unknown) => (err ? reject(err as Error) : resolve(res));
      auth.require(opts.role ?? 'viewer')(req as unknown as Request, r as unknown as Response, next);
    });
  return { auth, send, checks, refused, tick: (ms: number) => (now += ms), holdChecks: (on: boolean) => ((hold = on), on || (release.forEach((f) => f()), (release = []))) };
}

describe('API auth', () => {
  it('checks a password once and takes it again from the cache until cacheMs passes, only while the hash is the same', async () => {
    const users = new Map([['alice', entry('operator', 'H1')]]);
    const h = harness(users);
    const right = `pw-${users.get('alice')!.password.hash}`;
    expect((await h.send('alice', right)).locals.caller).toEqual({ name: 'alice', role: 'operator' });
    expect((await h.send('alice', right)).statusCode).toBe(200);
    expect(h.checks).toHaveLength(1);
    h.tick(60_001);
    expect((await h.send('alice', right)).statusCode).toBe(200);
    expect(h.checks).toHaveLength(2);
    users.set('alice', entry('operator', 'H2'));
    expect((await h.send('alice', right)).statusCode).toBe(401);
    expect(h.checks).toHaveLength(3);
  });

  it('an address that failed 5 times waits (429, Retry-After) without a password check; its wait doubles; a success clears it', async () => {
    const users = new Map([['alice', entry('operator', 'H1')]]);
    const h = harness(users);
    for (let i = 0; i < 5; i++) expect((await h.send('alice', 'guess')).statusCode).toBe(401);
    const held = await h.send('alice', 'guess');
    expect(held.statusCode).toBe(429);
    expect(held.headers['retry-after']).toBe('1');
    expect(h.checks).toHaveLength(5);
    expect(h.refused.at(-1)).toEqual({ name: 'alice', address: '10.0.0.1', reason: 'throttled after failed logins' });
    expect((await h.send('alice', 'guess', '10.0.0.2')).statusCode).toBe(401);
    h.tick(1000);
    expect((await h.send('alice', 'guess')).statusCode).toBe(401);
    expect(await h.send('alice', 'guess')).toMatchObject({ statusCode: 429, headers: { 'retry-after': '2' } });
    h.tick(2000);
    expect((await h.send('alice', `pw-${users.get('alice')!.password.hash}`)).statusCode).toBe(200);
    expect((await h.send('alice', 'guess')).statusCode).toBe(401);
  });

  it('an unknown name costs a check like a wrong password, and each refusal is told with its reason; another role is 403 after its check', async () => {
    const users = new Map([['bob', entry('agent', 'H3')], ['alice', entry('operator', 'H1')]]);
    const h = harness(users);
    expect((await h.send('nobody', 'x')).statusCode).toBe(401);
    expect((await h.send('alice', 'x', '10.0.0.9')).statusCode).toBe(401);
    expect(h.checks).toEqual(['x', 'x']);
    expect(h.refused).toEqual([
      { name: 'nobody', address: '10.0.0.1', reason: 'no such user' },
      { name: 'alice', address: '10.0.0.9', reason: 'wrong password' },
    ]);
    expect(await h.send('bob', `pw-${users.get('bob')!.password.hash}`)).toMatchObject({ statusCode: 403, body: { code: 'forbidden' } });
    expect(h.refused.at(-1)).toEqual({ name: 'bob', address: '10.0.0.1', reason: 'not an API account' });
  });

  it('a viewer reads but is refused (403) where an operator is required; an operator passes both; a Bearer token is the same pair', async () => {
    const users = new Map([['vera', entry('viewer', 'H4')], ['alice', entry('operator', 'H1')]]);
    const h = harness(users);
    const vera = `pw-${users.get('vera')!.password.hash}`;
    const alice = `pw-${users.get('alice')!.password.hash}`;
    expect(await h.send('vera', vera, undefined, { bearer: true })).toMatchObject({ statusCode: 200, locals: { caller: { name: 'vera', role: 'viewer' } } });
    expect(await h.send('vera', vera, undefined, { role: 'operator' })).toMatchObject({ statusCode: 403, body: { error: 'user "vera" is a viewer: this takes an operator' } });
    expect(await h.send('alice', alice, undefined, { role: 'operator', bearer: true })).toMatchObject({ statusCode: 200, locals: { caller: { name: 'alice', role: 'operator' } } });
    expect(h.refused).toEqual([]);
  });

  it('at most 4 checks run at once; more are told to retry', async () => {
    const h = harness(new Map([['alice', entry('operator', 'H1')]]));
    h.holdChecks(true);
    const pending = [1, 2, 3, 4].map((i) => h.send('alice', `guess-${i}`, `10.0.1.${i}`));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(h.checks).toHaveLength(4);
    expect(await h.send('alice', 'guess-5', '10.0.1.5')).toMatchObject({ statusCode: 429, body: { error: expect.stringContaining('at once') } });
    expect(h.refused).toEqual([{ name: 'alice', address: '10.0.1.5', reason: 'too many logins being checked' }]);
    h.holdChecks(false);
    expect((await Promise.all(pending)).map((r) => r.statusCode)).toEqual([401, 401, 401, 401]);
  });

  it('reads Bearer name:password and Basic credentials: the password may hold ":", a name may not be empty, anything else is none', () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    expect(tokenCredentials(`Basic ${b64('alice:a:b')}`)).toEqual({ user: 'alice', password: 'a:b' });
    expect(tokenCredentials(`basic ${b64('alice:')}`)).toEqual({ user: 'alice', password: '' });
    expect(tokenCredentials('Bearer ci-bot:s3cr:et')).toEqual({ user: 'ci-bot', password: 's3cr:et' });
    for (const bad of [undefined, '', 'Basic', `Basic ${b64(':pw')}`, `Basic ${b64('nocolon')}`, 'Bearer abc', 'Bearer :pw', 'Bearer a b', `Bearer a:${'x'.repeat(1100)}`, 'Basic a b'])
      expect(tokenCredentials(bad), String(bad)).toBeUndefined();
  });
});

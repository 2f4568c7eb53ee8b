import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureOperator, operatorCredentialsFile, readOperatorCredentials } from '../../src/hub/users/operator-credential.js';
import { generateCredential, hashPassword, PasswordHash, verifyPassword } from '../../src/hub/users/password-hash.js';
import { newUser, readUsers, UserName, writeUsers } from '../../src/hub/users/users-file.js';
import { ConfigError } from '../../src/shared/config-file.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'pushfleet-users-'));
  dirs.push(d);
  return d;
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('password hashes', () => {
  it('are scrypt with a random salt and their parameters, and check only the right password', async () => {
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    expect(a).toMatchObject({ alg: 'scrypt', N: 16_384, r: 8, p: 1 });
    expect(a.salt).not.toBe(b.salt);
    expect(a.hash).not.toBe(b.hash);
    expect(await verifyPassword('correct horse battery', a)).toBe(true);
    expect(await verifyPassword('correct horse batterY', a)).toBe(false);
    expect(await verifyPassword('', a)).toBe(false);
  });
  it('generates strong passwords that fit a URL as they are, with a fast salted hash that checks only them', async () => {
    const a = generateCredential();
    const b = generateCredential();
    expect(a.password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(b.password).not.toBe(a.password);
    expect(a.hash).toMatchObject({ alg: 'hmac-sha256' });
    expect(a.hash.salt).not.toBe(b.hash.salt);
    expect(PasswordHash.safeParse(a.hash).success).toBe(true);
    expect(await verifyPassword(a.password, a.hash)).toBe(true);
    expect(await verifyPassword(b.password, a.hash)).toBe(false);
    expect(await verifyPassword(a.password.slice(0, -1), a.hash)).toBe(false);
    expect(await verifyPassword('', a.hash)).toBe(false);
  });
  it('refuses a stored hash of an unknown kind or with scrypt parameters missing', () => {
    expect(PasswordHash.safeParse({ alg: 'md5', salt: 'AAAAAAAAAAAAAAAAAAAAAA==', hash: 'A'.repeat(44) }).success).toBe(false);
    expect(PasswordHash.safeParse({ alg: 'scrypt', salt: 'AAAAAAAAAAAAAAAAAAAAAA==', hash: 'A'.repeat(44) }).success).toBe(false);
  });
});

describe('the users file', () => {
  it('round-trips, mode 0600, with names checked like topic levels', async () => {
    const file = join(tempDir(), 'users.json');
    expect(readUsers(file).size).toBe(0);
    writeUsers(file, new Map([['web-1', newUser('agent', await hashPassword('pw-of-web-1'), new Date('2026-01-01T00:00:00Z'))]]));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const users = readUsers(file);
    expect(users.get('web-1')).toMatchObject({ role: 'agent', created: '2026-01-01T00:00:00.000Z' });
    expect(readFileSync(file, 'utf8')).not.toContain('pw-of-web-1');
    for (const bad of ['a/b', 'a+b', '#', '', 'x'.repeat(129)]) expect(UserName.safeParse(bad).success, bad).toBe(false);
  });
  it('says which file is damaged and why', () => {
    const file = join(tempDir(), 'users.json');
    writeFileSync(file, '{"version":1,"users":{"a/b":{}}}');
    expect(() => readUsers(file)).toThrow(ConfigError);
    expect(() => readUsers(file)).toThrow(new RegExp(`invalid users file ${file}`));
    writeFileSync(file, '{nope');
    expect(() => readUsers(file)).toThrow(/is not valid JSON/);
  });
});

describe('the operator credential', () => {
  it('is made once, kept mode 0600 beside the users file, and matches the account', async () => {
    const dir = tempDir();
    const usersFile = join(dir, 'users.json');
    const first = await ensureOperator(usersFile, dir);
    expect(first).toMatchObject({ created: true, file: operatorCredentialsFile(dir) });
    expect(statSync(first.file).mode & 0o777).toBe(0o600);
    const creds = readOperatorCredentials(dir)!;
    expect(creds).toEqual({ username: 'operator', password: (first as { password: string }).password });
    const account = readUsers(usersFile).get('operator')!;
    expect(account.role).toBe('operator');
    expect(await verifyPassword(creds.password, account.password)).toBe(true);
    expect(await ensureOperator(usersFile, dir)).toEqual({ created: false, file: first.file });
    expect(readOperatorCredentials(dir)).toEqual(creds);
  });
});

import { createHmac, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { z } from 'zod';

const Base64 = (min: number) => z.string().regex(new RegExp(`^[A-Za-z0-9+/=]{${min},}$`));

/** scrypt with its parameters stored beside the hash, so they can be raised later without a migration. */
const ScryptHash = z
  .object({
    alg: z.literal('scrypt'),
    N: z.number().int().min(1024).max(1_048_576),
    r: z.number().int().min(1).max(32),
    p: z.number().int().min(1).max(16),
    salt: Base64(16),
    hash: Base64(32),
  })
  .strict();

/**
 * HMAC-SHA-256 keyed by a salt, for passwords pushfleet generated itself (192 random bits): no
 * guesser can search that space, so a slow hash buys nothing there, and 10,000 agents logging in
 * again after a hub restart cost microseconds each instead of 50 ms of a core.
 */
const GeneratedHash = z.object({ alg: z.literal('hmac-sha256'), salt: Base64(16), hash: Base64(32) }).strict();

export const PasswordHash = z.discriminatedUnion('alg', [ScryptHash, GeneratedHash]);
export type PasswordHash = z.infer<typeof PasswordHash>;

// 16 MiB and ~50 ms per check: slow for a guesser, cheap for a client that connects once.
const DEFAULT = { N: 16_384, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const GENERATED_BYTES = 24;

const derive = (password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> =>
  new Promise((resolve, reject) => scrypt(password, salt, KEY_BYTES, { ...opts, maxmem: 256 * opts.N! * opts.r! }, (err, key) => (err ? reject(err) : resolve(key))));

const hmac = (password: string, salt: Buffer): Buffer => createHmac('sha256', salt).update(password, 'utf8').digest();

/** The hash of a password a person chose (scrypt). */
export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, DEFAULT);
  return { alg: 'scrypt', ...DEFAULT, salt: salt.toString('base64'), hash: key.toString('base64') };
}

/**
 * A new strong password (24 random bytes, base64url: no ':' or '@', so it fits a URL as is) and
 * its fast hash. Made together, so the fast hash is only ever given to a generated password.
 */
export function generateCredential(): { password: string; hash: PasswordHash } {
  const password = randomBytes(GENERATED_BYTES).toString('base64url');
  const salt = randomBytes(16);
  return { password, hash: { alg: 'hmac-sha256', salt: salt.toString('base64'), hash: hmac(password, salt).toString('base64') } };
}

export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  const salt = Buffer.from(stored.salt, 'base64');
  const key = stored.alg === 'scrypt' ? await derive(password, salt, { N: stored.N, r: stored.r, p: stored.p }) : hmac(password, salt);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** Checked against when the name is unknown, so a wrong name costs the same time as a wrong chosen password. */
export const NO_SUCH_USER: PasswordHash = { alg: 'scrypt', N: DEFAULT.N, r: DEFAULT.r, p: DEFAULT.p, salt: 'AAAAAAAAAAAAAAAAAAAAAA==', hash: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' };

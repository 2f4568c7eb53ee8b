import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { z } from 'zod';

/** scrypt with its parameters stored beside the hash, so they can be raised later without a migration. */
export const PasswordHash = z
  .object({
    alg: z.literal('scrypt'),
    N: z.number().int().min(1024).max(1_048_576),
    r: z.number().int().min(1).max(32),
    p: z.number().int().min(1).max(16),
    salt: z.string().regex(/^[A-Za-z0-9+/=]{16,}$/),
    hash: z.string().regex(/^[A-Za-z0-9+/=]{32,}$/),
  })
  .strict();
export type PasswordHash = z.infer<typeof PasswordHash>;

// 16 MiB and ~50 ms per check: slow for a guesser, cheap for a client that connects once.
const DEFAULT = { N: 16_384, r: 8, p: 1 } as const;
const KEY_BYTES = 32;

const derive = (password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> =>
  new Promise((resolve, reject) => scrypt(password, salt, KEY_BYTES, { ...opts, maxmem: 256 * opts.N! * opts.r! }, (err, key) => (err ? reject(err) : resolve(key))));

export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, DEFAULT);
  return { alg: 'scrypt', ...DEFAULT, salt: salt.toString('base64'), hash: key.toString('base64') };
}

export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  const key = await derive(password, Buffer.from(stored.salt, 'base64'), { N: stored.N, r: stored.r, p: stored.p });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** Checked against when the name is unknown, so a wrong name costs the same time as a wrong password. */
export const NO_SUCH_USER: PasswordHash = { alg: 'scrypt', N: DEFAULT.N, r: DEFAULT.r, p: DEFAULT.p, salt: 'AAAAAAAAAAAAAAAAAAAAAA==', hash: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' };

/** A strong generated password: 24 random bytes, base64url (no ':' or '@', so it fits a URL as is). */
export const generatePassword = (): string => randomBytes(24).toString('base64url');

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { writePrivateFile } from '../private-file.js';

/** The hub's signing key: the private half and the id agents know its public half by. */
export type SigningKey = { privateKey: KeyObject; publicKey: KeyObject; kid: string };
/** What an agent holds: the hub's public key and its id. */
export type VerifyKey = { publicKey: KeyObject; kid: string };

export const PRIVATE_KEY_FILE = 'hub.key';
export const PUBLIC_KEY_FILE = 'hub.pub';

/** The public key file beside a private key file: `…/hub.key` → `…/hub.pub`. */
export const publicKeyFileFor = (keyFile: string): string => `${keyFile.endsWith('.key') ? keyFile.slice(0, -4) : keyFile}.pub`;

/** 16 hex of sha256 over the raw 32-byte Ed25519 public key. */
export function keyId(publicKey: KeyObject): string {
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

function requireEd25519(key: KeyObject, file: string): void {
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${file} holds a ${key.asymmetricKeyType ?? 'non-asymmetric'} key, expected Ed25519`);
}

/** Reads a PKCS8 PEM Ed25519 private key (hub.key). Throws with the file named. */
export function loadSigningKey(file: string): SigningKey {
  const privateKey = createPrivateKey(readFileSync(file));
  requireEd25519(privateKey, file);
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, kid: keyId(publicKey) };
}

/** Reads an SPKI PEM Ed25519 public key (hub.pub). Throws with the file named. */
export function loadVerifyKey(file: string): VerifyKey {
  const publicKey = createPublicKey(readFileSync(file));
  requireEd25519(publicKey, file);
  return { publicKey, kid: keyId(publicKey) };
}

export class KeyExistsError extends Error {}

/**
 * Writes a new pair: `keyFile` (PKCS8 PEM, mode 0600) and its `.pub` beside it (SPKI PEM, 0644).
 * Refuses to replace either unless `force`: agents trust the old public key, and a replaced
 * private key cannot be got back. Each file is written to a temp name, fsynced and renamed, so a
 * crash leaves the old file or the new one.
 */
export function generateKeyFiles(keyFile: string, opts: { force?: boolean } = {}): { keyFile: string; pubFile: string; kid: string } {
  const pubFile = publicKeyFileFor(keyFile);
  const existing = [keyFile, pubFile].filter((f) => existsSync(f));
  if (existing.length && !opts.force) throw new KeyExistsError(`${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}; pass --force to replace (agents holding the old hub.pub then refuse every message until they get the new one)`);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  writePrivateFile(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
  writePrivateFile(pubFile, publicKey.export({ format: 'pem', type: 'spki' }).toString());
  chmodSync(pubFile, 0o644);
  return { keyFile, pubFile, kid: keyId(publicKey) };
}

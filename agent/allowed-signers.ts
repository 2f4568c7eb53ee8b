import { createHash } from 'node:crypto';

/** One line of an ssh allowed signers file: who may sign, with which key (its SHA256 fingerprint). */
export type AllowedSigner = { principals: string[]; keyType: string; fingerprint: string; line: number };

/** Options ssh-keygen itself enforces; cert-authority is refused (see parseAllowedSigners). */
const KNOWN_OPTIONS = new Set(['namespaces', 'valid-after', 'valid-before']);

/** Whitespace-separated fields, a double-quoted stretch kept whole (options like namespaces="a b"). */
function fields(line: string): string[] {
  return line.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
}

const isKeyType = (field: string) => /^(?:ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+$/.test(field);

/** `SHA256:<unpadded base64>`, as ssh-keygen prints it, of the key blob (its wire format). */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type a wire-format public key blob starts with (a length-prefixed string), or null. */
function blobType(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const len = blob.readUInt32BE(0);
  return len > 0 && len <= 64 && blob.length >= 4 + len ? blob.subarray(4, 4 + len).toString('latin1') : null;
}

/**
 * Parses an allowed signers file (ssh-keygen(1), "ALLOWED SIGNERS"): `principals [options]
 * keytype base64-key [comment]` per line. Throws one line a person can fix for anything else.
 * cert-authority lines are refused: a certificate's key is in no file, so the fingerprint check
 * the verifier makes on top of ssh-keygen's (see judgeSsh) could not hold.
 */
export function parseAllowedSigners(text: string): AllowedSigner[] {
  const signers: AllowedSigner[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const where = `line ${i + 1}`;
    const f = fields(line);
    const typeAt = f.findIndex(isKeyType);
    if (typeAt < 1 || typeAt > 2 || f[typeAt + 1] === undefined) throw new Error(`${where}: expected "principals [options] keytype base64-key"`);
    const options = typeAt === 2 ? f[1]!.split(',').map((o) => o.split('=')[0]!.toLowerCase()) : [];
    if (options.includes('cert-authority')) throw new Error(`${where}: cert-authority entries are not supported; list each signer's own key`);
    const unknown = options.find((o) => !KNOWN_OPTIONS.has(o));
    if (unknown !== undefined) throw new Error(`${where}: unknown option "${unknown}"`);
    const keyType = f[typeAt]!;
    const base64 = f[typeAt + 1]!;
    const blob = Buffer.from(base64, 'base64');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || blobType(blob) !== keyType) throw new Error(`${where}: the ${keyType} key is not valid base64 of a ${keyType} public key`);
    const principals = f[0]!.replace(/^"|"$/g, '').split(',').filter(Boolean);
    if (principals.length === 0) throw new Error(`${where}: no principal`);
    signers.push({ principals, keyType, fingerprint: sshFingerprint(blob), line: i + 1 });
  });
  if (signers.length === 0) throw new Error('lists no signer');
  return signers;
}

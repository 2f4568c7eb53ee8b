import type { CommitRefusalReason } from '../src/shared/messages.js';
import type { AllowedSigner } from './allowed-signers.js';

/** What the verifier makes of one commit: who signed it, or why it is refused. */
export type Verdict = { ok: true; signer: string } | { ok: false; reason: CommitRefusalReason; detail: string };

export type SignatureKind = 'none' | 'ssh' | 'openpgp' | 'x509' | 'other';

const refuse = (reason: CommitRefusalReason, detail: string): Verdict => ({ ok: false, reason, detail });

/**
 * The kind of signature a raw commit object (`git cat-file commit`) carries, read from the header
 * git verifies: `gpgsig` in a SHA-1 repository, `gpgsig-sha256` in a SHA-256 one (told by the
 * SHA's length). Known before git runs, so a signature of the other kind never reaches a verifier
 * this app did not choose (git picks gpg or ssh-keygen from the signature itself).
 */
export function signatureKind(commit: string, sha: string): SignatureKind {
  const header = sha.length === 64 ? 'gpgsig-sha256 ' : 'gpgsig ';
  const headers = commit.split('\n\n', 1)[0]!.split('\n');
  const sig = headers.find((h) => h.startsWith(header));
  if (!sig) return 'none';
  const armor = sig.slice(sig.indexOf(' ') + 1).trim();
  if (armor === '-----BEGIN SSH SIGNATURE-----') return 'ssh';
  if (armor === '-----BEGIN PGP SIGNATURE-----') return 'openpgp';
  if (armor === '-----BEGIN SIGNED MESSAGE-----') return 'x509';
  return 'other';
}

const SSH_GOOD = /^Good "git" signature for (.+) with (\S+) key (SHA256:[A-Za-z0-9+/]{43})$/;
/** ssh-keygen's check-novalidate: the signature is sound, but nobody in the file made it. */
const SSH_GOOD_UNKNOWN = /^Good "git" signature with (\S+) key (SHA256:[A-Za-z0-9+/]{43})$/;
/** A known key used outside what its line allows (expired, not yet valid, another namespace). */
const SSH_NOT_ALLOWED = /expired|not yet valid|not permitted/;

/**
 * `git verify-commit --raw` output for an ssh signature (ssh-keygen's own lines). Accepted only
 * when git exited 0 AND there is exactly one `Good "git" signature for <principal>` line whose
 * key is in the allowed signers file under that principal: a bare `Good "git" signature with …
 * key` is ssh-keygen saying the signature is sound but made by no one in the file.
 */
export function judgeSsh(lines: readonly string[], exitCode: number | null, allowed: readonly AllowedSigner[], file: string): Verdict {
  const text = lines.map((l) => l.trim()).filter(Boolean);
  const good = text.map((l) => SSH_GOOD.exec(l)).filter((m) => m !== null);
  if (exitCode === 0 && good.length === 1 && text.filter((l) => l.startsWith('Good ')).length === 1) {
    const [, principal, , fingerprint] = good[0]!;
    const entry = allowed.find((s) => s.fingerprint === fingerprint && s.principals.includes(principal!));
    if (entry) return { ok: true, signer: `${principal} (${fingerprint})` };
    return refuse('untrusted-signer', `signed by ${principal} with key ${fingerprint}, which ${file} does not list for that principal`);
  }
  const broken = text.find((l) => /incorrect signature|verification failed|invalid/i.test(l));
  if (broken) return refuse('bad-signature', broken);
  const notAllowed = text.find((l) => SSH_NOT_ALLOWED.test(l));
  const unknown = text.map((l) => SSH_GOOD_UNKNOWN.exec(l)).find((m) => m !== null);
  if (unknown || notAllowed || text.includes('No principal matched.')) {
    const key = unknown ? `key ${unknown[2]}` : 'a key';
    return refuse('untrusted-signer', `signed with ${key}, which ${file} does not allow${notAllowed ? ` (${notAllowed})` : ''}`);
  }
  return refuse('bad-signature', text.find((l) => /fail|could not/i.test(l)) ?? `git verify-commit exited with status ${exitCode} and reported no good signature`);
}

/** `[GNUPG:] KEYWORD args…` lines of gpg's status output, as keyword → each line's arguments. */
function statusLines(lines: readonly string[]): Map<string, string[][]> {
  const status = new Map<string, string[][]>();
  for (const line of lines) {
    const m = /^\[GNUPG:\] (\S+)(?: (.*))?$/.exec(line.trim());
    if (m) status.set(m[1]!, [...(status.get(m[1]!) ?? []), (m[2] ?? '').split(' ')]);
  }
  return status;
}

/** gpg status keywords that refuse the signer rather than the signature (doc/DETAILS in GnuPG). */
const GPG_UNTRUSTED: Record<string, string> = { EXPKEYSIG: 'its key has expired', REVKEYSIG: 'its key is revoked', EXPSIG: 'the signature has expired', NO_PUBKEY: 'its key is not in the allowed keys' };

/**
 * gpg's status output (`git verify-commit --raw`, over a keyring holding only the allowed keys).
 * Accepted only when git exited 0, there is exactly one signature, GOODSIG and VALIDSIG are both
 * there, nothing says bad, expired or revoked, and VALIDSIG's primary-key fingerprint is one of
 * `allowed` (the fingerprints of the allowed-keys file).
 */
export function judgeGpg(lines: readonly string[], exitCode: number | null, allowed: ReadonlySet<string>, file: string): Verdict {
  const s = statusLines(lines);
  const count = (k: string) => s.get(k)?.length ?? 0;
  if (count('NEWSIG') > 1) return refuse('bad-signature', `${count('NEWSIG')} signatures on one commit; exactly one is accepted`);
  if (count('BADSIG') > 0) return refuse('bad-signature', `BAD signature from key ${s.get('BADSIG')![0]![0]}: the commit does not match it`);
  const errsig = s.get('ERRSIG')?.[0];
  // ERRSIG's sixth field 9: no public key for it, i.e. a signer outside the allowed keys.
  if (errsig && errsig[5] !== '9') return refuse('bad-signature', `gpg could not check the signature of key ${errsig[0]} (error ${errsig[5]})`);
  for (const [keyword, why] of Object.entries(GPG_UNTRUSTED)) {
    if (count(keyword) > 0) return refuse('untrusted-signer', `signed by key ${s.get(keyword)![0]![0]}, but ${why} (allowed keys: ${file})`);
  }
  if (errsig) return refuse('untrusted-signer', `signed by key ${errsig[0]}, which is not in ${file}`);
  const good = s.get('GOODSIG')?.[0];
  const valid = s.get('VALIDSIG')?.[0];
  if (!good || !valid || count('GOODSIG') !== 1 || count('VALIDSIG') !== 1 || valid.length < 10) {
    return refuse('bad-signature', `gpg reported no single good and valid signature (git verify-commit exited with status ${exitCode})`);
  }
  const primary = valid[9]!;
  if (!allowed.has(primary)) return refuse('untrusted-signer', `signed by key ${primary}, which is not in ${file}`);
  if (exitCode !== 0) return refuse('bad-signature', `gpg reported a good signature by ${primary} but git verify-commit exited with status ${exitCode}`);
  return { ok: true, signer: `${good.slice(1).join(' ')} (${primary})` };
}

/** The primary-key fingerprints in `gpg --with-colons --list-keys` output: each `fpr` record right after a `pub`. */
export function primaryFingerprints(colons: string): Set<string> {
  const fprs = new Set<string>();
  let afterPub = false;
  for (const line of colons.split('\n')) {
    const f = line.split(':');
    if (f[0] === 'fpr' && afterPub && /^[0-9A-F]{40,64}$/.test(f[9] ?? '')) fprs.add(f[9]!);
    afterPub = f[0] === 'pub';
  }
  return fprs;
}

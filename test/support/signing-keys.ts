import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cleanup } from './cleanup.js';
import type { CommitOptions } from './git-fixture.js';

/** A real ssh-keygen ed25519 key pair; `allowed(principal)` is its allowed signers line. */
export function sshKey(dir: string, name: string) {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  const pub = readFileSync(`${file}.pub`, 'utf8').trim();
  return {
    file,
    allowed: (principal: string, options = '') => `${principal} ${options ? `${options} ` : ''}${pub}`,
    /** What `git commit` needs to sign with this key. */
    signs: { config: { 'gpg.format': 'ssh', 'user.signingkey': file, 'commit.gpgsign': 'true' } } satisfies CommitOptions,
  };
}

/** Writes an allowed signers file of these lines. */
export function allowedSignersFile(dir: string, name: string, lines: string[]): string {
  const file = join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/**
 * A real gpg key (ed25519, no passphrase) in its own GNUPGHOME; the gpg-agent signing starts is
 * stopped at cleanup. `armored()` is the public key as `gpg --armor --export` writes it.
 */
export function gpgKey(cleanup: Cleanup, name: string) {
  const home = join(cleanup.tempDir('pushfleet-gpg-'), 'gnupg');
  mkdirSync(home, { mode: 0o700 });
  const gpg = (...args: string[]) => execFileSync('gpg', ['--batch', '--homedir', home, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.defer(() => void execFileSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'], { stdio: 'ignore' }));
  gpg('--passphrase', '', '--quick-gen-key', `${name} <${name}@example.com>`, 'ed25519', 'sign', 'never');
  const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(gpg('--with-colons', '--list-keys'))![1]!;
  return {
    home,
    fpr,
    armored: () => gpg('--armor', '--export', fpr),
    /** Imports the revocation certificate gpg made with the key, so the key is revoked from now on. */
    revoke: () => {
      const cert = readFileSync(join(home, 'openpgp-revocs.d', `${fpr}.rev`), 'utf8').replace(/^:-----BEGIN/m, '-----BEGIN');
      const file = join(home, 'revoke.asc');
      writeFileSync(file, cert);
      gpg('--import', file);
    },
    signs: { config: { 'gpg.format': 'openpgp', 'user.signingkey': fpr, 'commit.gpgsign': 'true' }, env: { GNUPGHOME: home } } satisfies CommitOptions,
  };
}

/** A copy of `sha` with another message but its signature kept (so the signature no longer matches), made the tip of `branch`. */
export function tamperedCopy(bare: string, sha: string, branch = 'main'): string {
  const git = (input: string | undefined, ...args: string[]) => execFileSync('git', ['--git-dir', bare, ...args], { encoding: 'utf8', input }).trim();
  const raw = git(undefined, 'cat-file', 'commit', sha);
  const forged = raw.replace(/\n\n[\s\S]*$/, '\n\nnothing to see here\n');
  const copy = git(forged, 'hash-object', '-t', 'commit', '-w', '--stdin');
  git(undefined, 'update-ref', `refs/heads/${branch}`, copy);
  return copy;
}

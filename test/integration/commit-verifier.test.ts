import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommitRefused, CommitVerifier } from '../../agent/commit-verifier.js';
import { StepError } from '../../agent/step-error.js';
import { AgentConfig } from '../../agent/config.js';
import { VerifyConfig } from '../../agent/verify-config.js';
import { validateConfig } from '../../src/shared/config-file.js';
import { Cleanup } from '../support/cleanup.js';
import { GitFixture } from '../support/git-fixture.js';
import { allowedSignersFile, gpgKey, sshKey, tamperedCopy } from '../support/signing-keys.js';

/** git verify-commit on real commits signed by real keys, in a real repository; no broker. */
describe('CommitVerifier', () => {
  const cleanup = new Cleanup();
  let git: GitFixture;
  let dir: string;
  const saved = { GIT_CONFIG_GLOBAL: process.env.GIT_CONFIG_GLOBAL, GNUPGHOME: process.env.GNUPGHOME, PATH: process.env.PATH };
  beforeEach(() => {
    git = new GitFixture();
    cleanup.defer(() => git.remove());
    dir = cleanup.tempDir('pushfleet-verify-');
  });
  afterEach(async () => {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
    await cleanup.run();
  });

  const verifier = (mode: 'ssh' | 'gpg', allowedSigners: string) => new CommitVerifier(git.bare, VerifyConfig.parse({ mode, allowedSigners }), join(dir, 'scratch'));
  const limits = { timeoutMs: 30_000 };
  /** The refusal, or a failure of the test when the commit was accepted. */
  const refusal = async (v: CommitVerifier, sha: string) => {
    const err = await v.check(sha, limits).then(
      (signer) => new Error(`accepted, signed by ${signer}`),
      (e: unknown) => e,
    );
    if (!(err instanceof CommitRefused)) throw err;
    return err.refusal;
  };

  describe('mode ssh', () => {
    it('accepts a commit signed by an allowed key, and refuses unsigned, other-key, tampered and expired ones', async () => {
      const ada = sshKey(dir, 'ada');
      const eve = sshKey(dir, 'eve');
      const v = verifier('ssh', allowedSignersFile(dir, 'allowed', [ada.allowed('ada@example.com')]));
      const good = git.commit('good', { 'app.txt': 'good\n' }, 'main', ada.signs);
      expect(await v.check(good, limits)).toMatch(/^ada@example\.com \(SHA256:[A-Za-z0-9+/]{43}\)$/);

      expect(await refusal(v, git.commit('plain', { 'app.txt': 'plain\n' }))).toMatchObject({ reason: 'unsigned' });
      // A perfectly good signature, by a key the file does not list.
      expect(await refusal(v, git.commit('eve', { 'app.txt': 'eve\n' }, 'main', eve.signs))).toMatchObject({ reason: 'untrusted-signer', detail: expect.stringMatching(/SHA256:/) });
      expect(await refusal(v, tamperedCopy(git.bare, good))).toMatchObject({ reason: 'bad-signature', detail: expect.stringMatching(/incorrect signature/) });

      const expired = verifier('ssh', allowedSignersFile(dir, 'expired', [ada.allowed('ada@example.com', 'valid-before="20200101"')]));
      expect(await refusal(expired, good)).toMatchObject({ reason: 'untrusted-signer', detail: expect.stringMatching(/expired/) });
      const otherNamespace = verifier('ssh', allowedSignersFile(dir, 'ns', [ada.allowed('ada@example.com', 'namespaces="file"')]));
      expect(await refusal(otherNamespace, good)).toMatchObject({ reason: 'untrusted-signer' });
    });

    it("ignores the user's global git config, even one that allows every signer", async () => {
      const ada = sshKey(dir, 'ada');
      const eve = sshKey(dir, 'eve');
      const v = verifier('ssh', allowedSignersFile(dir, 'allowed', [ada.allowed('ada@example.com')]));
      const everyone = allowedSignersFile(dir, 'everyone', [eve.allowed('eve@example.com')]);
      const global = join(dir, 'gitconfig');
      writeFileSync(global, `[gpg "ssh"]\n\tallowedSignersFile = ${everyone}\n`);
      process.env.GIT_CONFIG_GLOBAL = global;
      const byEve = git.commit('eve', { 'app.txt': 'eve\n' }, 'main', eve.signs);
      expect(await refusal(v, byEve)).toMatchObject({ reason: 'untrusted-signer' });
    });

    it('refuses an OpenPGP-signed commit without asking gpg, whatever ~/.gnupg trusts', async () => {
      const ada = sshKey(dir, 'ada');
      const key = gpgKey(cleanup, 'mallory');
      process.env.GNUPGHOME = key.home; // the agent user's own keyring holds (and trusts) the signer
      const v = verifier('ssh', allowedSignersFile(dir, 'allowed', [ada.allowed('ada@example.com')]));
      const sha = git.commit('pgp', { 'app.txt': 'pgp\n' }, 'main', key.signs);
      expect(await refusal(v, sha)).toMatchObject({ reason: 'untrusted-signer', detail: expect.stringMatching(/openpgp signature; verify.mode ssh accepts only ssh/) });
    });
  });

  it('a verifier that cannot run fails the step, and is no refusal: the commit was not judged', async () => {
    const ada = sshKey(dir, 'ada');
    const v = verifier('ssh', allowedSignersFile(dir, 'allowed', [ada.allowed('ada@example.com')]));
    const good = git.commit('good', { 'app.txt': 'good\n' }, 'main', ada.signs);
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    symlinkSync(execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim(), join(bin, 'git'));
    process.env.PATH = bin; // git, but no ssh-keygen
    const err = await v.check(good, limits).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepError);
    expect(err).not.toBeInstanceOf(CommitRefused);
    expect((err as Error).message).toMatch(/cannot run ssh-keygen/);
  });

  describe('mode gpg', () => {
    it("accepts a commit signed by an allowed key; refuses another key even when the user's keyring has it, a revoked key and a tampered commit", async () => {
      const ada = gpgKey(cleanup, 'ada');
      const eve = gpgKey(cleanup, 'eve');
      const allowed = join(dir, 'allowed.asc');
      writeFileSync(allowed, ada.armored());
      const v = verifier('gpg', allowed);
      const good = git.commit('good', { 'app.txt': 'good\n' }, 'main', ada.signs);
      expect(await v.check(good, limits)).toContain(ada.fpr);

      process.env.GNUPGHOME = eve.home;
      const byEve = git.commit('eve', { 'app.txt': 'eve\n' }, 'main', eve.signs);
      expect(await refusal(v, byEve)).toMatchObject({ reason: 'untrusted-signer' });
      expect(await refusal(v, git.commit('plain', { 'app.txt': 'plain\n' }))).toMatchObject({ reason: 'unsigned' });
      expect(await refusal(v, tamperedCopy(git.bare, good))).toMatchObject({ reason: 'bad-signature' });

      ada.revoke();
      writeFileSync(allowed, ada.armored());
      expect(await refusal(v, good)).toMatchObject({ reason: 'untrusted-signer', detail: expect.stringMatching(/revoked/) });
    });
  });

  it('refuses a missing or malformed allowed-keys file at start-up, naming the config key', () => {
    const config = (verify: unknown) => () => validateConfig(AgentConfig, { mqtt: { url: 'mqtt://127.0.0.1:1' }, apps: [{ name: 'web', repo: 'acme/web', branch: 'main', path: join(dir, 'web'), restart: ['true'], verify }] }, 'agent.yaml');
    expect(config({ mode: 'ssh', allowedSigners: join(dir, 'nope') })).toThrow(/^invalid config agent.yaml:\n  apps\.0\.verify\.allowedSigners: cannot read .*nope: ENOENT$/);
    const junk = allowedSignersFile(dir, 'junk', ['ada@example.com ssh-ed25519 not-base64!']);
    expect(config({ mode: 'ssh', allowedSigners: junk })).toThrow(/apps\.0\.verify\.allowedSigners: .*junk: line 1: the ssh-ed25519 key is not valid base64/);
    expect(config({ mode: 'gpg', allowedSigners: junk })).toThrow(/apps\.0\.verify\.allowedSigners: .*junk is not an armored OpenPGP public key file/);
    expect(config({ mode: 'x509', allowedSigners: junk })).toThrow(/apps\.0\.verify\.mode/);
  });
});

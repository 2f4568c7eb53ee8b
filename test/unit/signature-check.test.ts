import { describe, expect, it } from 'vitest';
import { parseAllowedSigners, sshFingerprint, type AllowedSigner } from '../../agent/allowed-signers.js';
import { judgeGpg, judgeSsh, primaryFingerprints, signatureKind } from '../../agent/signature-check.js';

// A real ed25519 public key (ssh-keygen -t ed25519) and its fingerprint as `ssh-keygen -l` printed it.
const KEY = 'AAAAC3NzaC1lZDI1NTE5AAAAIBAGbVmgA5cisd49/O+uVexfd7FXQpm1kRDLTdLzdBg5';
const FP = 'SHA256:twy8MgkSGSdBIR8jsQPY1oHPd/iJfG5NiFes8tzSJys';
const OTHER_FP = 'SHA256:fIvAho84QYSNoLUIiv7Dp6QLGq8N6CgzGJiCu+sHE88';
const ALLOWED: AllowedSigner[] = [{ principals: ['ada@example.com', 'ada'], keyType: 'ssh-ed25519', fingerprint: FP, line: 1 }];
const FILE = '/etc/pushfleet/allowed_signers';

describe('parseAllowedSigners', () => {
  it('reads principals, options and the key, skipping comments and blank lines', () => {
    const text = `# team\n\nada@example.com,ada namespaces="git",valid-after="20240101" ssh-ed25519 ${KEY} ada's laptop\n"bob@example.com" ssh-ed25519 ${KEY}\n`;
    expect(parseAllowedSigners(text)).toEqual([
      { principals: ['ada@example.com', 'ada'], keyType: 'ssh-ed25519', fingerprint: FP, line: 3 },
      { principals: ['bob@example.com'], keyType: 'ssh-ed25519', fingerprint: FP, line: 4 },
    ]);
    expect(sshFingerprint(Buffer.from(KEY, 'base64'))).toBe(FP);
  });

  it('refuses what it cannot hold to: no signer, a CA line, an unknown option, a key that is not one', () => {
    expect(() => parseAllowedSigners('# nobody\n')).toThrow('lists no signer');
    expect(() => parseAllowedSigners(`*@example.com cert-authority ssh-ed25519 ${KEY}`)).toThrow(/line 1: cert-authority entries are not supported/);
    expect(() => parseAllowedSigners(`ada nopty ssh-ed25519 ${KEY}`)).toThrow(/line 1: unknown option "nopty"/);
    expect(() => parseAllowedSigners(`ada ssh-rsa ${KEY}`)).toThrow(/line 1: the ssh-rsa key is not valid base64 of a ssh-rsa public key/);
    expect(() => parseAllowedSigners(`ada ${KEY}`)).toThrow(/line 1: expected "principals \[options\] keytype base64-key"/);
  });
});

describe('signatureKind: from the commit object, before git runs', () => {
  const SHA1 = 'c'.repeat(40);
  const SHA256 = 'c'.repeat(64);
  const commit = (sig: string) => `tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n${sig}\nmessage\ngpgsig -----BEGIN SSH SIGNATURE-----\n`;
  it('tells ssh, OpenPGP, x509, unknown and none apart, from the header only (not the message)', () => {
    expect(signatureKind(commit('gpgsig -----BEGIN SSH SIGNATURE-----\n U1NI\n -----END SSH SIGNATURE-----\n'), SHA1)).toBe('ssh');
    expect(signatureKind(commit('gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQ\n -----END PGP SIGNATURE-----\n'), SHA1)).toBe('openpgp');
    expect(signatureKind(commit('gpgsig -----BEGIN SIGNED MESSAGE-----\n MI\n'), SHA1)).toBe('x509');
    expect(signatureKind(commit('gpgsig whatever\n'), SHA1)).toBe('other');
    // A signature-looking line in the message is no signature.
    expect(signatureKind(commit(''), SHA1)).toBe('none');
  });

  it('reads the header git verifies for the repository: gpgsig for SHA-1, gpgsig-sha256 for SHA-256', () => {
    const both = commit('gpgsig-sha256 -----BEGIN PGP SIGNATURE-----\n iQ\n -----END PGP SIGNATURE-----\ngpgsig -----BEGIN SSH SIGNATURE-----\n U1NI\n -----END SSH SIGNATURE-----\n');
    expect(signatureKind(both, SHA1)).toBe('ssh');
    expect(signatureKind(both, SHA256)).toBe('openpgp');
    expect(signatureKind(commit('gpgsig-sha256 -----BEGIN SSH SIGNATURE-----\n U1NI\n'), SHA1)).toBe('none');
  });
});

describe('judgeSsh: git verify-commit --raw output, strictly', () => {
  const good = `Good "git" signature for ada@example.com with ED25519 key ${FP}`;
  it('accepts one good signature by a listed principal with its listed key, and exit 0', () => {
    expect(judgeSsh([good], 0, ALLOWED, FILE)).toEqual({ ok: true, signer: `ada@example.com (${FP})` });
  });

  it('does not take exit 0 for an answer', () => {
    expect(judgeSsh([], 0, ALLOWED, FILE)).toMatchObject({ ok: false, reason: 'bad-signature' });
    // Good by a key the file does not hold (a verifier that lies, or a file that changed under git).
    expect(judgeSsh([`Good "git" signature for ada@example.com with ED25519 key ${OTHER_FP}`], 0, ALLOWED, FILE)).toMatchObject({ ok: false, reason: 'untrusted-signer' });
    // Good, but for a principal the key is not listed under.
    expect(judgeSsh([`Good "git" signature for mallory with ED25519 key ${FP}`], 0, ALLOWED, FILE)).toMatchObject({ ok: false, reason: 'untrusted-signer' });
    expect(judgeSsh([good, good], 0, ALLOWED, FILE)).toMatchObject({ ok: false });
  });

  it('does not take a good line for an answer either when git says no', () => {
    expect(judgeSsh([good], 1, ALLOWED, FILE)).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('calls a sound signature by someone not in the file untrusted, with the key', () => {
    const v = judgeSsh([`Good "git" signature with ED25519 key ${OTHER_FP}`, 'No principal matched.'], 1, ALLOWED, FILE);
    expect(v).toEqual({ ok: false, reason: 'untrusted-signer', detail: `signed with key ${OTHER_FP}, which ${FILE} does not allow` });
  });

  it('calls an expired key (valid-before) untrusted, saying so', () => {
    const lines = [`${FILE}:1: key has expired: verify time 2026-12-01T09:52:12 > valid-before 2020-01-01T00:00:00`, `Good "git" signature with ED25519 key ${FP}`, 'No principal matched.'];
    expect(judgeSsh(lines, 1, ALLOWED, FILE)).toMatchObject({ ok: false, reason: 'untrusted-signer', detail: expect.stringMatching(/key has expired/) });
  });

  it('calls a signature that does not match the commit bad', () => {
    expect(judgeSsh(['Signature verification failed: incorrect signature', 'Could not verify signature.'], 1, ALLOWED, FILE)).toEqual({ ok: false, reason: 'bad-signature', detail: 'Signature verification failed: incorrect signature' });
  });
});

describe('judgeGpg: gpg status lines, strictly', () => {
  const FPR = 'B55C6536ACEEEC519AA616CBA091284F3D7224DB';
  const SUB = 'C0FFEE36ACEEEC519AA616CBA091284F3D7224DB';
  const lines = (...status: string[]) => ['[GNUPG:] NEWSIG', ...status.map((s) => `[GNUPG:] ${s}`)];
  const validsig = (signing: string, primary: string) => `VALIDSIG ${signing} 2026-12-01 1796118737 0 4 0 22 8 00 ${primary}`;
  const good = lines('GOODSIG A091284F3D7224DB Ada <ada@example.com>', validsig(FPR, FPR), 'TRUST_UNDEFINED 0 pgp');
  const allowed = new Set([FPR]);

  it('accepts one good, valid signature whose primary key is allowed', () => {
    expect(judgeGpg(good, 0, allowed, FILE)).toEqual({ ok: true, signer: `Ada <ada@example.com> (${FPR})` });
    // Made with a subkey: the primary key's fingerprint counts.
    expect(judgeGpg(lines('GOODSIG 3F7224DB Ada', validsig(SUB, FPR)), 0, allowed, FILE)).toMatchObject({ ok: true });
  });

  it('refuses a good signature by a key that is not allowed, and a good one git did not accept', () => {
    expect(judgeGpg(good, 0, new Set([SUB]), FILE)).toMatchObject({ ok: false, reason: 'untrusted-signer', detail: expect.stringContaining(FPR) });
    expect(judgeGpg(good, 1, allowed, FILE)).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(judgeGpg(lines('GOODSIG A091284F3D7224DB Ada'), 0, allowed, FILE)).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(judgeGpg([], 0, allowed, FILE)).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('maps BADSIG, missing keys, expiry, revocation and two signatures to their reasons', () => {
    expect(judgeGpg(lines('BADSIG A091284F3D7224DB Ada'), 1, allowed, FILE)).toMatchObject({ reason: 'bad-signature' });
    expect(judgeGpg(lines('ERRSIG 00579D45DB8ABB21 22 8 00 1796118737 9 -', 'NO_PUBKEY 00579D45DB8ABB21'), 1, allowed, FILE)).toMatchObject({ reason: 'untrusted-signer', detail: expect.stringContaining('00579D45DB8ABB21') });
    expect(judgeGpg(lines('ERRSIG 00579D45DB8ABB21 22 8 00 1796118737 4 -'), 1, allowed, FILE)).toMatchObject({ reason: 'bad-signature' });
    expect(judgeGpg(lines('EXPKEYSIG A091284F3D7224DB Ada', validsig(FPR, FPR)), 0, allowed, FILE)).toMatchObject({ reason: 'untrusted-signer', detail: expect.stringMatching(/expired/) });
    expect(judgeGpg(lines('REVKEYSIG A091284F3D7224DB Ada', validsig(FPR, FPR)), 0, allowed, FILE)).toMatchObject({ reason: 'untrusted-signer', detail: expect.stringMatching(/revoked/) });
    expect(judgeGpg([...good, ...good], 0, allowed, FILE)).toMatchObject({ reason: 'bad-signature', detail: expect.stringMatching(/2 signatures/) });
  });

  it('primaryFingerprints takes each pub key, not its subkeys', () => {
    const colons = `tru::1:1796118737:0:3:1:5\npub:-:255:22:A091284F3D7224DB:1796118737:::-:::scSC:::::ed25519:::0:\nfpr:::::::::${FPR}:\nuid:-::::1796118737::D914::Ada <ada@example.com>::::::::::0:\nsub:-:255:22:3F7224DB:1796118737::::::s:::::ed25519::\nfpr:::::::::${SUB}:\n`;
    expect([...primaryFingerprints(colons)]).toEqual([FPR]);
  });
});

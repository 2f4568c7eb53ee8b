import { readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllowedSigners } from './allowed-signers.js';
import type { CommitRefusal } from './journal.js';
import type { VerifyConfig } from './verify-config.js';
import type { GitLimits } from './git-workdir.js';
import { describeExit, launch, type ProcessExit } from './run-command.js';
import { judgeGpg, judgeSsh, primaryFingerprints, signatureKind, type SignatureKind, type Verdict } from './signature-check.js';
import { StepError } from './step-error.js';

/** The commit was checked and refused: permanent (the same commit is refused again), and never checked out. */
export class CommitRefused extends StepError {
  override name = 'CommitRefused';
  constructor(readonly refusal: CommitRefusal) {
    super('verify', `refused: ${refusal.reason} (${refusal.detail})`, '', true);
  }
}

const KIND_OF_MODE: Record<VerifyConfig['mode'], SignatureKind> = { ssh: 'ssh', gpg: 'openpgp' };

/**
 * Checks that a fetched commit is signed by one of the app's allowed keys, with git's own
 * `verify-commit`, before it is checked out. Nothing of the machine's own configuration takes
 * part: no global or system git config (a user's `gpg.program` or allowed signers file), no
 * ~/.gnupg (gpg runs on a keyring made afresh from the allowed-keys file under the agent's state
 * dir), and the verifier programs are named on git's command line, above the working copy's
 * config. The allowed-keys file is read at every check, so a key added or removed takes effect
 * on the next update without a restart.
 */
export class CommitVerifier {
  constructor(
    private readonly workdir: string,
    private readonly verify: VerifyConfig,
    /** This app's own scratch directory under the agent's state dir (the gpg keyring). */
    private readonly scratch: string,
  ) {}

  /** Resolves with the signer; rejects with CommitRefused, or a StepError when the check itself could not run. */
  async check(sha: string, limits: GitLimits): Promise<string> {
    const deadline = Date.now() + limits.timeoutMs;
    const left = (): GitLimits => ({ timeoutMs: Math.max(deadline - Date.now(), 1), track: limits.track });
    const commit = await this.run(['git', 'cat-file', 'commit', sha], {}, left());
    if (commit.exit.code !== 0) throw new StepError('verify', `git cat-file commit ${sha} ${describeExit(['git'], commit.exit)}`, commit.exit.tail);
    const kind = signatureKind(commit.stdout.join('\n'), sha);
    const wanted = KIND_OF_MODE[this.verify.mode];
    if (kind === 'none') throw new CommitRefused({ reason: 'unsigned', detail: `commit ${sha} carries no signature; verify.mode ${this.verify.mode} requires one by a key in ${this.verify.allowedSigners}` });
    if (kind !== wanted) throw new CommitRefused({ reason: 'untrusted-signer', detail: `commit ${sha} has a${kind === 'other' ? 'n unknown kind of' : `n ${kind}`} signature; verify.mode ${this.verify.mode} accepts only ${wanted} signatures` });
    const verdict = this.verify.mode === 'ssh' ? await this.checkSsh(sha, left) : await this.checkGpg(sha, left);
    if (!verdict.ok) throw new CommitRefused({ reason: verdict.reason, detail: verdict.detail });
    return verdict.signer;
  }

  private async checkSsh(sha: string, left: () => GitLimits): Promise<Verdict> {
    const file = this.verify.allowedSigners;
    const signers = this.read(file, parseAllowedSigners);
    const args = ['-c', 'gpg.format=ssh', '-c', `gpg.ssh.allowedSignersFile=${file}`, '-c', 'gpg.ssh.program=ssh-keygen'];
    const out = await this.run(['git', ...args, 'verify-commit', '--raw', sha], {}, left());
    return this.judged(out, () => judgeSsh(out.stderr, out.exit.code, signers, file));
  }

  /** A keyring of only the allowed keys, made afresh for each check: a key taken out of the file is gone. */
  private async checkGpg(sha: string, left: () => GitLimits): Promise<Verdict> {
    const file = this.verify.allowedSigners;
    const home = join(this.scratch, 'gnupg');
    rmSync(home, { recursive: true, force: true });
    mkdirSync(home, { recursive: true, mode: 0o700 });
    // Verifying needs no secret key: no gpg-agent is started (and left running) for this keyring.
    writeFileSync(join(home, 'gpg.conf'), 'no-autostart\n');
    const env = { GNUPGHOME: home };
    try {
      const imported = await this.run(['gpg', '--batch', '--quiet', '--import', file], env, left());
      if (imported.exit.code !== 0) throw new StepError('verify', `cannot import the allowed keys ${file}: gpg ${describeExit(['gpg'], imported.exit)}`, imported.exit.tail);
      const listed = await this.run(['gpg', '--batch', '--with-colons', '--list-keys'], env, left());
      const allowed = primaryFingerprints(listed.stdout.join('\n'));
      if (allowed.size === 0) throw new StepError('verify', `${file} holds no OpenPGP public key`, listed.exit.tail);
      const out = await this.run(['git', '-c', 'gpg.format=openpgp', '-c', 'gpg.program=gpg', 'verify-commit', '--raw', sha], env, left());
      return this.judged(out, () => judgeGpg(out.stderr, out.exit.code, allowed, file));
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }

  /**
   * A verifier that timed out, was killed or could not start (git's "cannot run ssh-keygen") says
   * nothing about the commit: a failure of the step, not a refusal.
   */
  private judged({ exit, stderr }: { exit: ProcessExit; stderr: string[] }, judge: () => Verdict): Verdict {
    const notRun = stderr.find((l) => l.startsWith('error: cannot run'));
    if (exit.timedOut || exit.error || exit.signal || notRun) throw new StepError('verify', `git verify-commit ${exit.timedOut ? 'timed out' : (notRun ?? describeExit(['git'], exit))}`, exit.tail);
    return judge();
  }

  private read<T>(file: string, parse: (text: string) => T): T {
    try {
      return parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new StepError('verify', `allowed signers ${file}: ${(err as Error).message}`, '', true);
    }
  }

  private async run(argv: string[], env: NodeJS.ProcessEnv, limits: GitLimits): Promise<{ exit: ProcessExit; stdout: string[]; stderr: string[] }> {
    const out = { stdout: [] as string[], stderr: [] as string[] };
    const isolated = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', LC_ALL: 'C', ...env };
    const proc = await launch(argv, { cwd: this.workdir, env: isolated, timeoutMs: limits.timeoutMs, onLine: (stream, line) => out[stream].push(line) }, limits.track);
    return { exit: await proc.exited, ...out };
  }
}

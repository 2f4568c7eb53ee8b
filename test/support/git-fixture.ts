import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const gitWith = (env: NodeJS.ProcessEnv, cwd: string, ...args: string[]) =>
  execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ...env, GIT_AUTHOR_NAME: 'Ada', GIT_AUTHOR_EMAIL: 'ada@example.com', GIT_COMMITTER_NAME: 'Ada', GIT_COMMITTER_EMAIL: 'ada@example.com' },
  }).trim();
const git = (cwd: string, ...args: string[]) => gitWith({}, cwd, ...args);

/** How a commit is made beyond the defaults: `-c` settings (e.g. signing) and environment (GNUPGHOME). */
export type CommitOptions = { config?: Record<string, string>; env?: NodeJS.ProcessEnv };

/**
 * A real "GitHub": a bare repository in a temp dir that agents clone from, plus a scratch
 * working copy the test commits and pushes with.
 */
export class GitFixture {
  readonly root = mkdtempSync(join(tmpdir(), 'pushfleet-git-'));
  readonly bare = join(this.root, 'origin.git');
  private readonly work = join(this.root, 'author');

  constructor(files: Record<string, string> = { 'app.txt': 'v0\n' }) {
    git(this.root, 'init', '--quiet', '--bare', '--initial-branch=main', this.bare);
    git(this.root, 'init', '--quiet', '--initial-branch=main', this.work);
    this.commit('initial', files, 'main');
  }

  /** Commits files on `branch` (created from the current commit if new) and pushes; returns the SHA. */
  commit(message: string, files: Record<string, string>, branch = 'main', opts: CommitOptions = {}): string {
    git(this.work, 'checkout', '--quiet', '-B', branch);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(this.work, name), content);
    git(this.work, 'add', '-A');
    const config = Object.entries(opts.config ?? {}).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
    gitWith(opts.env ?? {}, this.work, ...config, 'commit', '--quiet', '--allow-empty', '-m', message);
    git(this.work, 'push', '--quiet', '--force', this.bare, `HEAD:refs/heads/${branch}`);
    return this.head();
  }

  head(): string {
    return git(this.work, 'rev-parse', 'HEAD');
  }

  /** A path for an app's working copy (not created: the agent clones into it). */
  workdir(name: string): string {
    return join(this.root, 'deploy', name);
  }

  headOf(path: string): string {
    return git(path, 'rev-parse', 'HEAD');
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

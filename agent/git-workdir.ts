import { existsSync, readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import { simpleGit, type SimpleGit } from 'simple-git';
import { StepError } from './step-error.js';


/**
 * The app's working copy. Fetches from the configured remote only; the SHA and ref come from a
 * validated message and are passed to git as separate arguments, never through a shell.
 */
export class GitWorkdir {
  constructor(
    private readonly path: string,
    private readonly remote: string,
  ) {}

  private git(cwd = this.path): SimpleGit {
    return simpleGit({ baseDir: cwd });
  }

  async head(): Promise<string | null> {
    if (!existsSync(`${this.path}/.git`)) return null;
    try {
      return (await this.git().revparse(['--verify', '--quiet', 'HEAD^{commit}'])).trim() || null;
    } catch {
      return null;
    }
  }

  async fetch(sha: string, ref: string): Promise<void> {
    await this.ensureClone();
    const git = this.git();
    if (await this.hasCommit(git, sha)) return;
    // Offer only HEAD's history as common ground: offering every local ref made a one-commit
    // fetch grow with the history (906 objects in 133 ms vs 9 in 25 ms after 300 commits).
    // A fresh clone's HEAD may not exist yet (empty remote), and git rejects an unknown tip.
    const tip = (await this.head()) ? ['--negotiation-tip=HEAD'] : [];
    // Ask for the exact SHA; servers that refuse unadvertised wants still serve the ref.
    try {
      await git.raw(['fetch', '--no-tags', '--quiet', ...tip, this.remote, sha]);
    } catch {
      await git.raw(['fetch', '--no-tags', '--quiet', ...tip, this.remote, ref]);
    }
    if (!(await this.hasCommit(git, sha))) {
      throw new StepError('fetch', `commit ${sha} is not on ${this.remote} (${ref} may have moved on)`);
    }
  }

  async checkout(sha: string): Promise<void> {
    await this.git().raw(['-c', 'advice.detachedHead=false', 'checkout', '--force', '--detach', sha]);
  }

  private async ensureClone(): Promise<void> {
    if (existsSync(`${this.path}/.git`)) return;
    if (existsSync(this.path) && readdirSync(this.path).length > 0) {
      throw new StepError('fetch', `${this.path} is not empty and not a git working copy; empty it or point "path" elsewhere`);
    }
    mkdirSync(dirname(this.path), { recursive: true });
    await this.git(dirname(this.path)).raw(['clone', '--no-checkout', '--quiet', this.remote, this.path]);
  }

  private async hasCommit(git: SimpleGit, sha: string): Promise<boolean> {
    try {
      await git.raw(['cat-file', '-e', `${sha}^{commit}`]);
      return true;
    } catch {
      return false;
    }
  }
}

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StepName } from '../src/shared/messages.js';
import { describeExit, launch, type Track } from './run-command.js';
import type { SpareProcesses } from './spare-process.js';
import { StepError } from './step-error.js';

/** A git command's time limit, and how its process is recorded before it runs. */
export type GitLimits = { timeoutMs: number; track?: Track };

const KILL_GRACE_MS = 2000;

/**
 * The app's working copy. Fetches from the configured remote only; the SHA and ref come from a
 * validated message and are passed to git as separate arguments, never through a shell. Network
 * commands run in their own process group under a deadline, so a stalled remote (git's HTTP
 * transport has no timeout of its own) is cut together with its remote helper.
 */
export class GitWorkdir {
  /**
   * Whether HEAD names a commit, once known: it does from the first checkout on, so an update
   * asks git only for the fetch. Unknown again after a clone.
   */
  private hasHead: boolean | null = null;

  constructor(
    private readonly path: string,
    private readonly remote: string,
    /** Where the tracked git processes start from (see spare-process.ts); none: forked each time. */
    private readonly spares?: SpareProcesses,
  ) {}

  async head(): Promise<string | null> {
    if (!existsSync(`${this.path}/.git`)) return null;
    const head = (await this.query(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'])) || null;
    this.hasHead = head !== null;
    return head;
  }

  /**
   * Makes `sha` present locally (cloning first when the path is empty), within one deadline.
   * Fetched first and looked for locally only if that fails: a pushed SHA is new, and git's
   * exit status says whether the fetch brought it. One already here (a redo after a restart,
   * a pin to an older SHA) is found all the same, after the remote had its say.
   */
  async fetch(sha: string, ref: string, limits: GitLimits): Promise<void> {
    const deadline = Date.now() + limits.timeoutMs;
    const left = (): GitLimits => ({ timeoutMs: Math.max(deadline - Date.now(), 1), track: limits.track });
    await this.ensureClone(left());
    // Offer only HEAD's history as common ground: offering every local ref made a one-commit
    // fetch grow with the history (906 objects in 133 ms vs 9 in 25 ms after 300 commits).
    // A fresh clone's HEAD may not exist yet (empty remote), and git rejects an unknown tip.
    const tip = (this.hasHead ?? (await this.head()) !== null) ? ['--negotiation-tip=HEAD'] : [];
    // Ask for the exact SHA; servers that refuse unadvertised wants still serve the ref.
    try {
      return await this.run('fetch', ['fetch', '--no-tags', '--quiet', ...tip, this.remote, sha], left());
    } catch (err) {
      if (await this.hasCommit(sha)) return;
      if (Date.now() >= deadline) throw err;
      await this.run('fetch', ['fetch', '--no-tags', '--quiet', ...tip, this.remote, ref], left());
    }
    if (!(await this.hasCommit(sha))) {
      throw new StepError('fetch', `commit ${sha} is not on ${this.remote} (${ref} may have moved on)`, '', true);
    }
  }

  async checkout(sha: string, limits: GitLimits): Promise<void> {
    await this.run('checkout', ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--force', '--detach', sha], limits);
    this.hasHead = true;
  }

  private async ensureClone(limits: GitLimits): Promise<void> {
    if (existsSync(`${this.path}/.git`)) return;
    this.hasHead = null;
    if (existsSync(this.path) && readdirSync(this.path).length > 0) {
      throw new StepError('fetch', `${this.path} is not empty and not a git working copy; empty it or point "path" elsewhere`, '', true);
    }
    mkdirSync(dirname(this.path), { recursive: true });
    await this.run('fetch', ['clone', '--no-checkout', '--quiet', this.remote, this.path], limits, dirname(this.path));
  }

  private async hasCommit(sha: string): Promise<boolean> {
    return (await this.query(['cat-file', '-e', `${sha}^{commit}`])) !== null;
  }

  /**
   * A local, read-only git question: its output, or null when git says no (or cannot run).
   * Spawned directly: simple-git waited up to 50 ms after each exit for its output streams.
   */
  private query(args: readonly string[]): Promise<string | null> {
    return new Promise((resolve) => execFile('git', args, { cwd: this.path }, (err, stdout) => resolve(err ? null : stdout.trim())));
  }

  private async run(step: StepName, args: string[], limits: GitLimits, cwd = this.path): Promise<void> {
    const exit = await (await launch(['git', ...args], { cwd, env: process.env, timeoutMs: limits.timeoutMs, killGraceMs: KILL_GRACE_MS, spares: this.spares }, limits.track)).exited;
    if (exit.code === 0 && !exit.error) return;
    const command = args.find((a) => !a.startsWith('-') && !a.includes('=')) ?? args[0];
    const why = exit.timedOut ? `timed out after ${limits.timeoutMs / 1000} s` : describeExit(['git'], exit);
    const said = exit.tail.trim().split('\n').at(-1);
    throw new StepError(step, `git ${command} ${why}${said ? `: ${said}` : ''}`, exit.tail);
  }
}

import type { Logger } from '../src/shared/logger.js';
import { SCHEMA_VERSION, type AppState } from '../src/shared/messages.js';
import { applyUpdate, type UpdateResult } from './apply-update.js';
import { AppWorker, type Target } from './app-worker.js';
import type { AppConfig } from './config.js';
import { GitWorkdir } from './git-workdir.js';
import { waitHealthy } from './health-check.js';
import { runCommand } from './run-command.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * One configured app on this agent: its working copy, its worker and its state message.
 * The adapter between the pure update sequence and git, processes and HTTP.
 */
export class AppRunner {
  readonly worker: AppWorker;
  private state: AppState;

  private constructor(
    readonly app: AppConfig,
    private readonly agentId: string,
    private readonly workdir: GitWorkdir,
    headSha: string | null,
    private readonly log: Logger,
    private readonly publish: (state: AppState) => void,
  ) {
    this.state = {
      v: SCHEMA_VERSION,
      agent: agentId,
      app: app.name,
      repo: app.repo,
      ref: null,
      state: headSha ? 'deployed' : 'idle',
      sha: headSha,
      targetSha: null,
      lastError: null,
      durations: {},
      updatedAt: new Date().toISOString(),
    };
    this.worker = new AppWorker(headSha, {
      apply: (target) => this.apply(target),
      onStart: (target) => this.report({ state: 'updating', targetSha: target.sha, ref: target.ref }),
      onDone: (target, result) => this.done(target, result),
    });
  }

  static async create(app: AppConfig, agentId: string, log: Logger, publish: (state: AppState) => void): Promise<AppRunner> {
    const workdir = new GitWorkdir(app.path, app.remote);
    return new AppRunner(app, agentId, workdir, await workdir.head(), log.child({ app: app.name }), publish);
  }

  get current(): AppState {
    return this.state;
  }

  private report(change: Partial<AppState>): void {
    this.state = { ...this.state, ...change, updatedAt: new Date().toISOString() };
    this.publish(this.state);
  }

  private envFor(sha: string, target: Target): NodeJS.ProcessEnv {
    // Only validated values (SHA, ref, names) are passed, and only as environment variables.
    return {
      ...process.env,
      ...this.app.env,
      PUSHFLEET_APP: this.app.name,
      PUSHFLEET_REPO: this.app.repo,
      PUSHFLEET_SHA: sha,
      PUSHFLEET_TARGET_SHA: target.sha,
      PUSHFLEET_REF: target.ref,
      PUSHFLEET_AGENT: this.agentId,
    };
  }

  private apply(target: Target): Promise<UpdateResult> {
    const log = this.log.child({ sha: target.sha });
    log.info({ ref: target.ref, from: this.worker.sha }, 'update started');
    const health = this.app.health;
    return applyUpdate(this.app, target, {
      head: () => this.workdir.head(),
      fetch: (sha, ref) => this.workdir.fetch(sha, ref),
      checkout: (sha) => this.workdir.checkout(sha),
      run: (step, argv, sha) =>
        runCommand(argv, { step, cwd: this.app.path, env: this.envFor(sha, target), timeoutMs: this.app.stepTimeout * 1000, log: log.child({ step }) }),
      health: health
        ? (sha) => waitHealthy(health, { cwd: this.app.path, env: this.envFor(sha, target), log: log.child({ step: 'health' }), sleep, now: Date.now })
        : undefined,
      now: Date.now,
    });
  }

  private done(target: Target, result: UpdateResult): void {
    const error = result.error && { step: result.error.step, message: result.error.message, outputTail: result.error.outputTail };
    const fields = { sha: result.sha, targetSha: target.sha, state: result.state, durations: result.durations, error };
    if (result.state === 'deployed') this.log.info(fields, 'update deployed');
    else this.log.error(fields, `update ${result.state}`);
    this.report({ state: result.state, sha: result.sha, targetSha: target.sha, ref: target.ref, lastError: error, durations: result.durations });
  }
}

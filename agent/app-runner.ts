import type { Logger } from '../src/shared/logger.js';
import { SCHEMA_VERSION, type AppState } from '../src/shared/messages.js';
import { applyUpdate, type UpdateResult } from './apply-update.js';
import { AppWorker, type Target } from './app-worker.js';
import type { AppConfig } from './config.js';
import { GitWorkdir } from './git-workdir.js';
import { waitHealthy } from './health-check.js';
import type { RolloutGate } from './rollout-gate.js';
import { runCommand } from './run-command.js';
import type { Lease } from '../src/semaphore-client/client.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * One configured app on this agent: its working copy, its worker and its state message.
 * The adapter between the pure update sequence and git, processes and HTTP.
 */
export class AppRunner {
  readonly worker: AppWorker;
  private state: AppState;
  /** Aborted when a newer target should replace the one waiting for its rollout grant. */
  private waiting: AbortController | null = null;
  /** The rollout slot held while an update runs; given back once its outcome is published. */
  private lease: Lease | null = null;
  private stopping = false;

  private constructor(
    readonly app: AppConfig,
    private readonly agentId: string,
    private readonly workdir: GitWorkdir,
    headSha: string | null,
    private readonly log: Logger,
    private readonly publish: (state: AppState) => void,
    private readonly gate: RolloutGate | null,
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
      follows: app.branch !== undefined ? { kind: 'branch', pattern: app.branch } : { kind: 'tag', pattern: app.tag! },
      rollout: app.rollout,
      pinnedSha: null,
      deliveryId: null,
    };
    this.worker = new AppWorker(headSha, {
      apply: (target) => this.admitted(target),
      onStart: (target) => this.report({ state: this.needsGrant(target) ? 'waiting' : 'updating', targetSha: target.sha, ref: target.ref, deliveryId: target.deliveryId }),
      onDone: (target, result) => this.done(target, result),
      onNewer: () => this.waiting?.abort(),
    });
  }

  static async create(app: AppConfig, agentId: string, log: Logger, publish: (state: AppState) => void, gate: RolloutGate | null): Promise<AppRunner> {
    const workdir = new GitWorkdir(app.path, app.remote);
    return new AppRunner(app, agentId, workdir, await workdir.head(), log.child({ app: app.name }), publish, gate);
  }

  get current(): AppState {
    return this.state;
  }

  /**
   * Takes back what the state published before this agent restarted said about the SHA the
   * working copy is still on (the last error, durations, a rolled-back outcome), so a restart
   * does not wipe what an operator needs to see.
   */
  restore(previous: AppState): void {
    if (previous.sha !== this.state.sha || previous.app !== this.state.app) return;
    const settled = previous.state === 'deployed' || previous.state === 'rolled-back' || previous.state === 'failed' || previous.state === 'held';
    this.state = {
      ...this.state,
      state: settled ? previous.state : this.state.state,
      ref: previous.ref,
      targetSha: previous.targetSha,
      lastError: previous.lastError,
      durations: previous.durations,
      deliveryId: previous.deliveryId,
    };
    if (previous.deliveryId) this.worker.remember(previous.deliveryId);
  }

  get pinnedSha(): string | null {
    return this.state.pinnedSha;
  }

  /** Pinned (sha) or unpinned (null) by the hub; the pin itself is offered as a direct target. */
  setPin(sha: string | null): void {
    if (sha === this.state.pinnedSha) return;
    if (sha === null) this.worker.forgetNewest();
    this.report({ pinnedSha: sha });
  }

  /** Gives up a wait for a rollout grant (the agent is stopping); a running update is not touched. */
  stopWaiting(): void {
    this.stopping = true;
    this.waiting?.abort();
  }

  private needsGrant(target: Target): boolean {
    return this.gate !== null && this.app.rollout && !target.direct;
  }

  /** Waits for the rollout's grant when the app takes part in rollouts, then applies. */
  private async admitted(target: Target): Promise<UpdateResult> {
    if (!this.needsGrant(target)) return this.apply(target);
    const waiting = new AbortController();
    if (this.stopping) waiting.abort();
    this.waiting = waiting;
    const lease = await this.gate!.admit(this.app.name, target.sha, waiting.signal).finally(() => {
      this.waiting = null;
    });
    const sha = this.worker.sha;
    if (!lease) return { state: 'held', sha, previousSha: sha, error: null, durations: {} };
    this.lease = lease;
    this.report({ state: 'updating' });
    return this.apply(target);
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
    if (result.state === 'deployed' || result.state === 'held') this.log.info(fields, `update ${result.state}`);
    else this.log.error(fields, `update ${result.state}`);
    const ref = result.state === 'held' ? this.state.ref : target.ref;
    this.report({ state: result.state, sha: result.sha, targetSha: target.sha, ref, lastError: error, durations: result.durations });
    // After the state: the hub reads this host's outcome from it when the slot comes back.
    const lease = this.lease;
    this.lease = null;
    if (lease) void (result.state === 'deployed' ? lease.release() : lease.abort()).catch((err: Error) => this.log.warn({ err: err.message }, 'rollout slot not returned'));
  }
}

import type { Logger } from '../src/shared/logger.js';
import type { AppConfig } from './config.js';
import { commandEnv } from './command-env.js';
import type { CommitVerifier } from './commit-verifier.js';
import type { GitWorkdir } from './git-workdir.js';
import { waitHealthy } from './health-check.js';
import type { Target } from './journal.js';
import { runCommand, type Track } from './run-command.js';
import type { SpareProcesses } from './spare-process.js';
import type { WorkKind, WorkStep } from './update-plan.js';

/** `track` records each process the step starts before it runs (see launch). */
export type ExecContext = { log: Logger; timeoutMs: number; track?: Track };

/**
 * How one kind of step is run: its time limit, whether a failure is worth another try (transient:
 * a remote that is down or a network blip; an update, restart or health failure would fail again),
 * and the I/O itself. Rejects with a StepError.
 */
export type Executor = {
  timeoutMs: number;
  retry: 'backoff' | 'never';
  run(step: WorkStep, ctx: ExecContext): Promise<void>;
};

export type Executors = Record<WorkKind, Executor>;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The executors of one app: git on its working copy, the signature check of apps with `verify`
 * (null: the plan has no verify step), its own configured commands, its health check.
 */
export function appExecutors(app: AppConfig, agentId: string, workdir: GitWorkdir, verifier: CommitVerifier | null = null, spares?: SpareProcesses): Executors {
  // Only validated values (SHA, ref, names) are passed, and only as environment variables.
  const envFor = (sha: string, target: Target): NodeJS.ProcessEnv =>
    commandEnv({
      ...app.env,
      PUSHFLEET_APP: app.name,
      PUSHFLEET_REPO: app.repo,
      PUSHFLEET_SHA: sha,
      PUSHFLEET_TARGET_SHA: target.sha,
      PUSHFLEET_REF: target.ref,
      PUSHFLEET_AGENT: agentId,
    });
  const command = (argvOf: (s: WorkStep) => readonly string[]): Executor['run'] => (s, ctx) =>
    runCommand(argvOf(s), { step: s.kind, cwd: app.path, env: envFor(s.sha, s.target), timeoutMs: ctx.timeoutMs, log: ctx.log, track: ctx.track, spares });
  const stepMs = app.stepTimeout * 1000;
  const health = app.health;
  return {
    fetch: { timeoutMs: app.fetchTimeout * 1000, retry: 'backoff', run: (s, ctx) => workdir.fetch(s.sha, s.target.ref, ctx) },
    verify: {
      timeoutMs: stepMs,
      retry: 'never',
      run: async (s, ctx) => {
        if (!verifier) throw new Error('no verify configured for this app');
        ctx.log.info({ signer: await verifier.check(s.sha, ctx) }, 'commit signature verified');
      },
    },
    checkout: { timeoutMs: stepMs, retry: 'never', run: (s, ctx) => workdir.checkout(s.sha, ctx) },
    update: { timeoutMs: stepMs, retry: 'never', run: command((s) => app.update[s.index]!) },
    restart: { timeoutMs: stepMs, retry: 'never', run: command(() => app.restart) },
    // The health check keeps its own timeout (how long the app may take to become healthy).
    health: {
      timeoutMs: (health?.timeout ?? 0) * 1000,
      retry: 'never',
      run: (s, ctx) => (health ? waitHealthy(health, { cwd: app.path, env: envFor(s.sha, s.target), log: ctx.log, sleep, now: Date.now, track: ctx.track }) : Promise.resolve()),
    },
  };
}

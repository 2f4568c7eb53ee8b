import { hostname } from 'node:os';
import { z } from 'zod';
import { EnvName } from '../src/shared/contract/rollout-messages.js';
import { RepoName } from '../src/shared/messages.js';
import { whenParsed } from '../src/shared/config-file.js';
import { defaultStateDir } from '../src/shared/default-state-dir.js';
import { MqttConnectionConfig } from '../src/shared/mqtt-connection.js';
import { ENV_LABEL, TOPIC_LEVEL } from '../src/shared/topics.js';
import { Argv } from './argv.js';
import { OrchestratorNodeConfig } from './node/node-config.js';
import { VerifyConfig } from './verify-config.js';
import { ActionsConfig } from './action-config.js';
import { AgentJobsConfig } from './jobs/jobs-config.js';
import { AgentServicesConfig } from './services/services-config.js';

export { Argv };

const Seconds = z.number().positive();

const Health = z.union([
  z.object({ url: z.url({ protocol: /^https?$/ }), timeout: Seconds.default(30), interval: Seconds.default(0.5) }).strict(),
  z.object({ command: Argv, timeout: Seconds.default(30), interval: Seconds.default(0.5) }).strict(),
]);
export type HealthConfig = z.infer<typeof Health>;

export const AppConfig = z
  .object({
    name: z.string().regex(TOPIC_LEVEL, 'use letters, digits, ".", "_" or "-"'),
    repo: RepoName,
    /** Branch name or glob (`release/*`); set this or `tag`. */
    branch: z.string().min(1).optional(),
    /** Tag name or glob (`v*`): the app follows the newest matching tag. */
    tag: z.string().min(1).optional(),
    path: z.string().min(1),
    /** Clone URL; taken from here only, never from a message. */
    remote: z.string().min(1).optional(),
    update: z.array(Argv).default([]),
    restart: Argv,
    health: Health.optional(),
    /** Longest any one update or restart command (and the checkout) may run. */
    stepTimeout: Seconds.default(600),
    /** Longest a git fetch or clone may take; a stalled one is cut and retried. */
    fetchTimeout: Seconds.default(120),
    /**
     * Transient failures (fetch, clone) are retried after retryDelay·2^(n−1) seconds, capped at
     * retryMaxDelay, half of it random (jitter), until they succeed or a newer push replaces them.
     */
    retryDelay: Seconds.default(5),
    retryMaxDelay: Seconds.default(300),
    /**
     * The agent was stopped during an update (kill -9, OOM, stop timeout): on its next start, run
     * the update again from its first step (redo), or go back to the previous SHA (rollback).
     */
    onInterrupted: z.enum(['redo', 'rollback']).default('redo'),
    /**
     * Wait for the hub's rollout to admit each update (a semaphore grant) instead of updating at
     * once; see src/hub/engines/rollouts/README.md.
     */
    rollout: z.boolean().default(false),
    /** Deploy only commits signed by an allowed key (agent/verify-config.ts); others are refused, never checked out. */
    verify: VerifyConfig.optional(),
    /** Extra environment for the app's commands. */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
  })
  .strict()
  .refine((a) => (a.branch === undefined) !== (a.tag === undefined), {
    message: 'set exactly one of "branch" or "tag"',
    path: ['branch'],
    ...whenParsed('branch', 'tag'),
  })
  .refine((a) => a.retryMaxDelay >= a.retryDelay, { message: 'must be at least retryDelay', path: ['retryMaxDelay'], ...whenParsed('retryDelay', 'retryMaxDelay') })
  .transform((a) => ({ ...a, remote: a.remote ?? `https://github.com/${a.repo}.git` }));
export type AppConfig = z.infer<typeof AppConfig>;

/** Apps are told apart by name (journal, topics); checked over the apps that failed too, so one run lists it. */
function uniqueNames(apps: readonly unknown[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  apps.forEach((app, i) => {
    const name = (app as { name?: unknown } | null)?.name;
    if (typeof name !== 'string') return;
    if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate app name "${name}"` });
    seen.add(name);
  });
}

export const AgentConfig = z
  .object({
    id: z.string().regex(TOPIC_LEVEL, 'use letters, digits, ".", "_" or "-"').default(() => hostname()),
    mqtt: MqttConnectionConfig,
    labels: z.record(z.string(), z.string()).default({}),
    heartbeatSeconds: Seconds.default(30),
    /** Where the agent keeps one journal per app (what it deployed, what it is doing). */
    stateDir: z.string().min(1).default(() => defaultStateDir('pushfleet-agent')),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().prefault({}),
    apps: z.array(AppConfig).superRefine(uniqueNames, whenParsed()).default([]),
    /** The hub's semaphore (engines.semaphore.prefix there), used by apps with `rollout: true`. */
    semaphore: z.object({ prefix: z.string().regex(/^[^/+#\s]+(?:\/[^/+#\s]+)*$/, 'expected topic levels without wildcards').default('coordinosaur') }).strict().prefault({}),
    /** The hub's public key (its hub.pub): heads, pins, rollbacks, grants and commands must be signed by it. Required at start unless acceptUnsigned. */
    hubPublicKey: z.string().min(1).optional(),
    /** Take unsigned messages too (and signed ones unchecked without hubPublicKey): an explicit opt-out, warned about at every start. */
    acceptUnsigned: z.boolean().default(false),
    /** Makes this agent a playbook node (agent/node/, src/hub/engines/orchestrator/README.md). */
    orchestrator: OrchestratorNodeConfig.optional(),
    /** Named commands the hub may ask this agent to run (agent/action-config.ts). */
    actions: ActionsConfig.default({}),
    /** Makes this agent a runner of the hub's jobs engine (`executor: agent` rows). */
    jobs: AgentJobsConfig.optional(),
    /** Makes this agent a server of the hub's services engine (agent/services/). */
    services: AgentServicesConfig.optional(),
  })
  .strict()
  // Each cross-field check runs even when other keys failed, so `--check` lists every error at once.
  .superRefine((cfg, ctx) => {
    // The env label names rollout channels and ids, so it must be one clean word.
    const env = cfg.labels[ENV_LABEL];
    if (env !== undefined && !EnvName.safeParse(env).success) ctx.addIssue({ code: 'custom', path: ['labels', ENV_LABEL], message: 'use 1-64 letters, digits, "_" or "-"' });
  }, whenParsed('labels'))
  // An agent that only runs playbook actions, jobs or services needs no app.
  .refine((cfg) => cfg.apps.length > 0 || cfg.orchestrator !== undefined || cfg.jobs !== undefined || cfg.services !== undefined, {
    path: ['apps'],
    message: 'list at least one app (or configure orchestrator:, jobs: or services:)',
    ...whenParsed('apps', 'orchestrator', 'jobs', 'services'),
  })
  .superRefine((cfg, ctx) => {
    for (const section of ['jobs', 'services'] as const) {
      cfg[section]?.actions.forEach((name, i) => {
        if (!(name in cfg.actions)) ctx.addIssue({ code: 'custom', path: [section, 'actions', i], message: `no action "${name}" under actions:` });
      });
    }
  }, whenParsed('jobs', 'services', 'actions'));
export type AgentConfig = z.infer<typeof AgentConfig>;

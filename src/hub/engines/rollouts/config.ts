import { z } from 'zod';
import { ConfigError } from '../../../shared/config-file.js';
import { RolloutPolicyRule } from '../../../shared/contract/rollout-messages.js';

/** The rollouts engine's settings (`engines.rollouts` in the hub config). */
export const RolloutsConfig = z
  .object({
    /** Needs engines.semaphore: admission is its channels. */
    enabled: z.boolean().default(true),
    /** Applies to every rollout before the matching `policies`. */
    defaults: RolloutPolicyRule.omit({ app: true, env: true }).default({}),
    /** Every rule whose `app` and `env` globs match applies, in order, later keys winning. */
    policies: z.array(RolloutPolicyRule).default([]),
    /** Rollouts kept in the history (and as retained state topics); older ones are forgotten. */
    history: z.number().int().positive().default(200),
    /** Agents the engine follows (from their retained status and app states); past it new ones are ignored. */
    maxAgents: z.number().int().positive().default(10_000),
    /** Apps followed per agent; past it new ones are ignored. */
    maxAppsPerAgent: z.number().int().positive().default(100),
    /** Pinned agent × app pairs; a pin past it is refused. */
    maxPins: z.number().int().positive().default(10_000),
    /** Frozen environments; a freeze past it is refused. */
    maxFrozen: z.number().int().positive().default(1000),
    /**
     * Seconds a host may wait in the channel of a rollout this hub does not know (a push it never
     * got, or a made-up id) before its job is withdrawn (expired: cancelled): such channels would
     * otherwise hold places of engines.semaphore.maxChannels for good.
     */
    unknownRolloutWait: z.number().positive().default(300),
    /**
     * Least ms between two rewrites of a rollout's retained snapshot (a large one waits longer: its
     * size at 1 MB/s); a status change rewrites it at once. Every change is an event meanwhile.
     * 0: rewritten on every change.
     */
    snapshotIntervalMs: z.number().int().nonnegative().default(250),
    /**
     * A snapshot larger than this leaves its hosts out (`hosts: []`, `hostsOmitted`, states in
     * `counts`; each host's changes are in the events): brokers bound a message's size (EMQX 1 MB
     * by default, AWS IoT 128 KB) and every subscriber receives it whole. About 230 bytes a host.
     */
    snapshotMaxBytes: z.number().int().positive().default(1024 * 1024),
    /** Report each rollout to GitHub as a Deployment of its SHA to its environment, with statuses. */
    github: z
      .object({
        apiUrl: z.url({ protocol: /^https?$/ }).default('https://api.github.com'),
        /** Needs "Deployments: write" (fine-grained) or repo_deployment; default PUSHFLEET_GITHUB_TOKEN. */
        token: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type RolloutsConfig = z.infer<typeof RolloutsConfig>;

/** The GitHub reporting settings, with the token from the config or the environment; undefined when off. */
export function githubSettings(config: RolloutsConfig, env: NodeJS.ProcessEnv = process.env): { apiUrl: string; token: string } | undefined {
  if (!config.github) return undefined;
  const token = config.github.token ?? env.PUSHFLEET_GITHUB_TOKEN;
  if (!token) throw new ConfigError('engines.rollouts.github.token: set it, or PUSHFLEET_GITHUB_TOKEN, to report rollouts to GitHub (or remove engines.rollouts.github)');
  return { apiUrl: config.github.apiUrl, token };
}

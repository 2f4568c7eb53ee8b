import { z } from 'zod';
import { RolloutPolicyRule } from '../../../shared/messages.js';

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
  })
  .strict();
export type RolloutsConfig = z.infer<typeof RolloutsConfig>;

import { z } from 'zod';
import { ActionName } from '../../src/shared/contract/jobs-messages.js';

/** The agent's `jobs:` section: which of its `actions:` the hub's jobs engine may run here, and how many at once. */
export const AgentJobsConfig = z
  .object({
    actions: z.array(ActionName).min(1, 'offer at least one action of actions:'),
    maxConcurrent: z.number().int().positive().default(1),
  })
  .strict();
export type AgentJobsConfig = z.infer<typeof AgentJobsConfig>;

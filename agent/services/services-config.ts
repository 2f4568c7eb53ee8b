import { z } from 'zod';
import { ActionName } from '../../src/shared/contract/jobs-messages.js';

/** The agent's `services:` section: which of its `actions:` the hub's services engine may run here as services, and how many at once. */
export const AgentServicesConfig = z
  .object({
    actions: z.array(ActionName).min(1, 'offer at least one action of actions:'),
    maxWorkers: z.number().int().positive().default(1),
    /**
     * Seconds every service copy gets between SIGTERM and SIGKILL (not its action's stopTimeout,
     * which stays the jobs' one). The hub waits this long past a lost agent's lease before it
     * places the agent's services elsewhere, so it bounds how fast they move (agent.example.yaml).
     */
    stopTimeout: z.number().positive().max(3600).default(1),
  })
  .strict();
export type AgentServicesConfig = z.infer<typeof AgentServicesConfig>;

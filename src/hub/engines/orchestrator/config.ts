import { z } from 'zod';

/** The hub's `engines.orchestrator` settings (README.md beside this file). */
export const OrchestratorConfig = z
  .object({
    enabled: z.boolean().default(true),
    /** Seconds between sending "start at T" and T: must exceed the delivery time to every agent. */
    startMargin: z.number().positive().max(60).default(0.25),
    /** Seconds a cancelled run waits for its nodes to report their stopped actions. */
    cancelGrace: z.number().positive().default(10),
    /** Agents the engine follows (from their retained status and node info); past it new ones are ignored. */
    maxAgents: z.number().int().positive().default(10_000),
    /** Runs under way at once; a run request past it is rejected. */
    maxRuns: z.number().int().positive().default(100),
  })
  .strict();
export type OrchestratorConfig = z.infer<typeof OrchestratorConfig>;

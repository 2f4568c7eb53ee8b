import { z } from 'zod';

/** The hub's `engines.orchestrator` settings (README.md beside this file). */
export const OrchestratorConfig = z
  .object({
    enabled: z.boolean().default(true),
    /** Seconds between sending "start at T" and T: must exceed the delivery time to every agent. */
    startMargin: z.number().positive().max(60).default(0.25),
    /** Seconds a cancelled run waits for its nodes to report their stopped actions. */
    cancelGrace: z.number().positive().default(10),
  })
  .strict();
export type OrchestratorConfig = z.infer<typeof OrchestratorConfig>;

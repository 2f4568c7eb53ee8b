import { z } from 'zod';
import { ActionName } from '../src/shared/contract/jobs-messages.js';
import { Argv } from './argv.js';

/**
 * One named command of the agent's top-level `actions:`, which the hub may ask it to run (the
 * jobs engine now, services later): always this argv from this file, never a command from a
 * message. What a message may add is environment only, set by the feature that runs it.
 */
export const ActionConfig = z
  .object({
    command: Argv,
    cwd: z.string().min(1).optional(),
    /** Longest one run may take; a run's own timeout can only be shorter. */
    timeoutSeconds: z.number().positive().default(3600),
    /** Seconds between SIGTERM and SIGKILL of its process group when it is stopped or times out. */
    stopTimeout: z.number().positive().default(10),
    /**
     * For services (agent/services/): the process must send WATCHDOG=1 to its NOTIFY_SOCKET at
     * least this often (systemd's WatchdogSec=), or it is stopped and reported `watchdog timeout`.
     */
    watchdogSec: z.number().positive().optional(),
    /** For services: pass the service's argument as the last argv element too, not only as PUSHFLEET_SERVICE_ARG. */
    lastArgument: z.boolean().optional(),
    /** Fixed extra environment. */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'use letters, digits and "_"'), z.string()).default({}),
  })
  .strict();
export type ActionConfig = z.infer<typeof ActionConfig>;

export const ActionsConfig = z.record(ActionName, ActionConfig);
export type ActionsConfig = z.infer<typeof ActionsConfig>;

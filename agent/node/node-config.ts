import { z } from 'zod';
import { OrchestratorName } from '../../src/shared/contract/orchestrator-messages.js';
import { SEED_DEFAULT_ROOT, SEED_ROOT } from '../../src/shared/topics.js';
import { regexSource, whenParsed } from '../../src/shared/config-file.js';
import { Argv } from '../argv.js';

/** Each word a command may append must match this unless the action says otherwise: no spaces, quotes, `$`, `;`, `|`, `*`. */
export const DEFAULT_ARG_PATTERN = '^[A-Za-z0-9._:/=@,+-]{1,256}$';
/** Handled by the node itself, so no action may take these names. */
export const BUILT_IN = ['STOP', 'TERMINATE'] as const;

export const NodeAction = z
  .object({
    command: Argv,
    /** 'none': the command's words after the action name are refused; 'append': added to argv. */
    args: z.enum(['none', 'append']).default('none'),
    argPattern: regexSource('u').default(DEFAULT_ARG_PATTERN),
    maxArgs: z.number().int().min(0).max(64).default(16),
    cwd: z.string().min(1).optional(),
  })
  .strict();
export type NodeAction = z.infer<typeof NodeAction>;

/** The agent's `orchestrator:` section: it makes the agent a playbook node. */
export const OrchestratorNodeConfig = z
  .object({
    /** Topic root of seed (MQTT-Orchestrate) commands and statuses. */
    root: z.string().regex(SEED_ROOT, 'use topic levels of letters, digits, ".", "_" or "-", without wildcards').default(SEED_DEFAULT_ROOT),
    /** This node's name under the root (default: the agent id). */
    node: OrchestratorName.optional(),
    actions: z.record(OrchestratorName, NodeAction).refine((a) => !BUILT_IN.some((b) => b in a), { message: 'STOP and TERMINATE are built in', ...whenParsed() }),
    /**
     * Run the seed's plain-word commands (<root>/<node>/COMMAND). They cannot carry the hub's
     * signature, so anyone who may publish there runs this node's actions: off unless set, warned about at every start.
     */
    acceptSeedCommands: z.boolean().default(false),
    /** Seed commands waiting while an action runs; one more is refused with BUSY. */
    queueSize: z.number().int().min(0).max(100).default(4),
    /** Seconds between SIGTERM and SIGKILL when an action is stopped. */
    stopGrace: z.number().positive().default(5),
    clock: z
      .object({
        /** Pings per measurement; the one with the smallest round trip wins. */
        samples: z.number().int().min(1).max(100).default(8),
        /** Seconds between measurements. */
        resyncSeconds: z.number().positive().default(60),
      })
      .strict()
      .prefault({}),
  })
  .strict();
export type OrchestratorNodeConfig = z.infer<typeof OrchestratorNodeConfig>;

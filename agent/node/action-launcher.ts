import type { Logger } from '../../src/shared/logger.js';
import { commandEnv } from '../command-env.js';
import { startProcess, type RunningProcess } from '../run-command.js';
import type { ResolvedAction } from './command-words.js';
import type { OrchestratorNodeConfig } from './node-config.js';

/**
 * How a node starts an action: its configured argv only (no shell), the agent's command
 * environment plus who runs it, in its own process group. A gated one is created now and held
 * before its exec until `open()`; stopping it before then kills the waiting process.
 */
export function actionLauncher(ids: { agent: string; seedNode: string }, cfg: Pick<OrchestratorNodeConfig, 'stopGrace'>, log: Logger) {
  return (r: Extract<ResolvedAction, { ok: true }>, gated: boolean): RunningProcess =>
    startProcess(r.argv, {
      gated,
      cwd: r.cwd,
      env: commandEnv({ PUSHFLEET_AGENT: ids.agent, PUSHFLEET_NODE: ids.seedNode, PUSHFLEET_ACTION: r.action }),
      killGraceMs: cfg.stopGrace * 1000,
      onLine: (stream, line) => log.debug({ action: r.action, stream }, line),
    });
}

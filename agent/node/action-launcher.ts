import type { Logger } from '../../src/shared/logger.js';
import { commandEnv } from '../command-env.js';
import { startProcess, type ProcessOptions, type RunningProcess } from '../run-command.js';
import type { ResolvedAction } from './command-words.js';
import type { OrchestratorNodeConfig } from './node-config.js';
import { realtimeOffsetMs, runAt } from './precise-start.js';
import { startTimed } from './timed-gate.js';

type Resolved = Extract<ResolvedAction, { ok: true }>;

export type ActionLauncher = {
  /** Starts the action now. */
  start(r: Resolved): RunningProcess;
  /**
   * Creates the action's process now, held before its exec, and releases it at `at` (local
   * preciseNow ms); `started(t)` is told the actual start, on the same clock. Stopping or killing
   * the process before then means the action never runs.
   */
  startAt(r: Resolved, at: number, started: (t: number) => void): RunningProcess;
};

/**
 * How a node starts an action: its configured argv only (no shell), the agent's command
 * environment plus who runs it, in its own process group. A timed start is released by its own
 * gate (`timedGate`: see timed-gate.ts), or else by this agent opening a plain gate at T.
 */
export function actionLauncher(ids: { agent: string; seedNode: string }, cfg: Pick<OrchestratorNodeConfig, 'stopGrace'>, timedGate: boolean, log: Logger): ActionLauncher {
  const options = (r: Resolved): ProcessOptions => ({
    cwd: r.cwd,
    env: commandEnv({ PUSHFLEET_AGENT: ids.agent, PUSHFLEET_NODE: ids.seedNode, PUSHFLEET_ACTION: r.action }),
    killGraceMs: cfg.stopGrace * 1000,
    onLine: (stream, line) => log.debug({ action: r.action, stream }, line),
  });
  return {
    start: (r) => startProcess(r.argv, options(r)),
    startAt: (r, at, started) => {
      const opts = options(r);
      if (timedGate) {
        // Read at arming: the gate waits on the system clock, `at` is on preciseNow.
        const offset = realtimeOffsetMs();
        try {
          return startTimed(r.argv, opts, (at + offset) * 1000, (us) => started(us / 1000 - offset));
        } catch (err) {
          log.warn({ action: r.action, err: (err as Error).message }, 'cannot arm a timed gate; released by the agent instead');
        }
      }
      const proc = startProcess(r.argv, { ...opts, gated: true });
      const cancel = runAt(at, (t) => {
        proc.open();
        started(t);
      });
      void proc.exited.then(cancel); // a gate that died before its start instant
      return {
        ...proc,
        kill: (signal) => {
          cancel();
          proc.kill(signal);
        },
        terminate: () => {
          cancel();
          proc.terminate();
        },
      };
    },
  };
}

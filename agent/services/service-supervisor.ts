import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../src/shared/logger.js';
import type { ActionsConfig } from '../action-config.js';
import { describeGroup } from '../process-group.js';
import { describeExit, type ProcessOptions, type RunningProcess, type Track } from '../run-command.js';
import type { CopyGroups } from './copy-groups.js';
import { listenNotify, type NotifyListener, type NotifyMessage } from './notify-socket.js';
import type { AgentServicesConfig } from './services-config.js';

/** One copy of a service the hub placed here: generation is its fencing token, restarts counts the hub's restarts of that placement. */
export type ServiceSpec = { name: string; generation: number; restarts: number; action: string; arg: string };

/** How a copy ended. `reason` in words: exited with status n, killed by SIGx, watchdog timeout, stopped: why, cannot start: why. */
export type ServiceExit = { name: string; generation: number; restarts: number; code: number | null; signal: NodeJS.Signals | null; reason: string; stopped: boolean };

export type CopyIds = Pick<ServiceSpec, 'name' | 'generation' | 'restarts'>;

export type CopyState = { generation: number; restarts: number; stopping: boolean; ready: boolean; status?: string };

export type SupervisorDeps = {
  actions: ActionsConfig;
  services: AgentServicesConfig;
  /** Where the notify sockets live (a directory of the agent's own, mode 0700). */
  runtimeDir: string;
  /** Starts the argv once `track` resolved (run-command.ts launch); env already has the agent's secrets stripped (command-env.ts). */
  launch(argv: readonly string[], opts: ProcessOptions, track: Track): Promise<RunningProcess>;
  /** The agent's environment minus its secrets, plus `extra` (command-env.ts commandEnv). */
  env(extra: Record<string, string>): NodeJS.ProcessEnv;
  /** A copy ended (or could not start); restarting it is the hub's decision. */
  exited(exit: ServiceExit): void;
  /** A copy started, said READY=1, or sent a new STATUS=. */
  notified(name: string, state: CopyState): void;
  /** A line the copy wrote to stdout or stderr. */
  output(copy: CopyIds, line: string): void;
  /** Where each copy's process group is recorded while it runs (copy-groups.ts). */
  groups: Pick<CopyGroups, 'put' | 'remove'>;
  log: Logger;
};

type Copy = CopyState & {
  spec: ServiceSpec;
  proc: RunningProcess | null;
  stopReason: string | null;
  notify: NotifyListener | null;
  watchdog: NodeJS.Timeout | undefined;
  kill: NodeJS.Timeout | undefined;
  /** SIGKILL this long after SIGTERM; set when it is stopped. */
  graceMs: number;
  guard: ChildProcess | null;
  exited: Promise<void>;
};

/**
 * A gate-keeper beside each copy, outside its process group: it blocks reading a pipe from the
 * agent and, if the agent dies (kill -9, OOM) and the pipe closes, SIGKILLs the copy's whole
 * group. Without it a copy would outlive the agent and its lease, and the hub's new copy would
 * overlap it. It ignores the signals a stopping agent's group gets; the agent stops the copies itself then.
 */
const GUARD = ['-c', 'trap "" HUP INT TERM; read -r _ || kill -KILL "-$1"', 'pushfleet-service-guard'];

/**
 * Runs the services the hub placed on this agent: only actions offered under `services.actions`,
 * at most `services.maxWorkers` at once, each in its own process group with its own
 * NOTIFY_SOCKET, stopped with SIGTERM then SIGKILL after `services.stopTimeout`. It never
 * restarts a copy by itself: it reports each end, and the hub decides.
 */
export class ServiceSupervisor {
  private readonly copies = new Map<string, Copy>();

  constructor(private readonly deps: SupervisorDeps) {}

  /** The copies running or stopping, by service name. */
  running(): ReadonlyMap<string, CopyState> {
    return this.copies;
  }

  /** Why this agent would not run `spec` now, or null. */
  private refusal(spec: ServiceSpec): string | null {
    const offered = this.deps.services.actions;
    if (!offered.includes(spec.action) || !this.deps.actions[spec.action]) return `action "${spec.action.slice(0, 128)}" is not offered to services by this agent (offered: ${offered.join(', ')})`;
    if (spec.arg.includes('\0')) return 'the argument holds a NUL character';
    if (this.copies.has(spec.name)) return `a copy of ${spec.name} (generation ${this.copies.get(spec.name)!.generation}) is still running or stopping here`;
    if (this.copies.size >= this.deps.services.maxWorkers) return `busy: ${this.copies.size} of services.maxWorkers ${this.deps.services.maxWorkers} running`;
    return null;
  }

  /** Starts a copy; a refusal or a failure to start is reported through `exited`. */
  start(spec: ServiceSpec): void {
    const refused = this.refusal(spec);
    if (refused) return this.deps.exited({ ...this.ids(spec), code: null, signal: null, reason: `refused: ${refused}`, stopped: false });
    const action = this.deps.actions[spec.action]!;
    const log = this.deps.log.child({ service: spec.name, generation: spec.generation, action: spec.action });
    let ended!: () => void;
    const copy: Copy = { ...this.ids(spec), spec, stopping: false, ready: false, proc: null, stopReason: null, notify: null, watchdog: undefined, kill: undefined, graceMs: this.deps.services.stopTimeout * 1000, guard: null, exited: new Promise((r) => (ended = r)) };
    this.copies.set(spec.name, copy);
    const watchdogMs = action.watchdogSec === undefined ? undefined : action.watchdogSec * 1000;
    const armWatchdog = () => {
      clearTimeout(copy.watchdog);
      if (watchdogMs !== undefined && !copy.stopping) copy.watchdog = setTimeout(() => this.stopCopy(copy, 'watchdog timeout'), watchdogMs);
    };
    const finish = (exit: Omit<ServiceExit, 'name' | 'generation' | 'restarts' | 'stopped'>) => {
      clearTimeout(copy.watchdog);
      clearTimeout(copy.kill);
      copy.notify?.close();
      // As systemd does with a unit's cgroup: what the copy left in its group (a daemonised child)
      // would be a second copy once the hub places the service again.
      if (copy.proc?.pid !== undefined) killGroup(copy.proc.pid);
      copy.guard?.kill('SIGKILL');
      try {
        this.deps.groups.remove(spec.name);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'ended copy not struck from the process group record');
      }
      this.copies.delete(spec.name);
      log.info({ code: exit.code, signal: exit.signal, reason: exit.reason }, 'service copy ended');
      this.deps.exited({ ...this.ids(spec), ...exit, stopped: copy.stopReason !== null });
      ended();
    };
    const onNotify = (m: NotifyMessage) => {
      if (m.watchdog) armWatchdog();
      if (m.watchdogTrigger) this.stopCopy(copy, 'watchdog timeout (WATCHDOG=trigger)');
      if (m.ready || m.status !== undefined) {
        copy.ready ||= m.ready;
        if (m.status !== undefined) copy.status = m.status;
        this.deps.notified(spec.name, this.state(copy));
      }
    };
    const socket = join(this.deps.runtimeDir, `${spec.name}.notify`);
    const extra: Record<string, string> = {
      ...action.env,
      PUSHFLEET_SERVICE_NAME: spec.name,
      PUSHFLEET_SERVICE_GENERATION: String(spec.generation),
      PUSHFLEET_SERVICE_ARG: spec.arg,
      NOTIFY_SOCKET: socket,
      // As systemd: the interval the process must ping within (sd_watchdog_enabled(3)).
      ...(watchdogMs !== undefined && { WATCHDOG_USEC: String(watchdogMs * 1000) }),
    };
    const argv = action.lastArgument ? [...action.command, spec.arg] : action.command;
    const onLine = (stream: 'stdout' | 'stderr', line: string) => {
      log.info({ stream }, line);
      this.deps.output(this.ids(spec), line);
    };
    const opts: ProcessOptions = { cwd: action.cwd, env: this.deps.env(extra), onLine };
    // Recorded before it may run, so that a restarted agent finds it; guarded so that it dies with the agent.
    const track: Track = async (pid, argv0) => {
      this.deps.groups.put(spec.name, { generation: spec.generation, restarts: spec.restarts, group: describeGroup(pid, 'service', argv0) });
      copy.guard = await startGuard(pid);
    };
    Promise.resolve()
      .then(() => {
        // Only this user may send to the notify sockets (Node cannot check a datagram's sender: no SO_PASSCRED).
        mkdirSync(this.deps.runtimeDir, { recursive: true, mode: 0o700 });
        chmodSync(this.deps.runtimeDir, 0o700);
        return listenNotify(socket, onNotify, (err) => log.warn({ err: err.message }, 'notify socket error'));
      })
      .then(async (notify) => {
        copy.notify = notify;
        const proc = await this.deps.launch(argv, opts, track);
        copy.proc = proc;
        if (copy.stopReason) this.signal(copy); // stopped while it was being started
        else armWatchdog();
        log.info({ pid: proc.pid }, 'service copy started');
        if (proc.pid !== undefined) this.deps.notified(spec.name, this.state(copy));
        const exit = await proc.exited;
        finish({ code: exit.code, signal: exit.signal, reason: copy.stopReason ?? describeExit(argv, exit) });
      })
      .catch((err: Error) => finish({ code: null, signal: null, reason: `cannot start: ${err.message}` }));
  }

  /** Stops a copy (SIGTERM to its group, SIGKILL after services.stopTimeout); resolves once it is gone. */
  stop(name: string, reason: string): Promise<void> {
    const copy = this.copies.get(name);
    if (!copy) return Promise.resolve();
    this.stopCopy(copy, reason);
    return copy.exited;
  }

  /**
   * Stops every copy (lease run out, agent stopping); resolves once all are gone. `lateMs`: how
   * long after it was due the stop comes (a stalled event loop), taken off each stopTimeout so
   * that SIGKILL still lands when the hub counts on it.
   */
  async stopAll(reason: string, lateMs = 0): Promise<void> {
    await Promise.all(
      [...this.copies.values()].map((copy) => {
        this.stopCopy(copy, reason, lateMs);
        return copy.exited;
      }),
    );
  }

  private stopCopy(copy: Copy, reason: string, lateMs = 0): void {
    if (copy.stopping) return;
    this.deps.log.info({ service: copy.spec.name, generation: copy.generation, reason, lateMs }, 'stopping service copy');
    copy.stopping = true;
    copy.stopReason = reason.startsWith('watchdog') ? reason : `stopped: ${reason}`;
    copy.graceMs = Math.max(0, copy.graceMs - lateMs);
    clearTimeout(copy.watchdog);
    if (copy.proc) this.signal(copy);
  }

  /** SIGTERM to the group, SIGKILL after the grace period. */
  private signal(copy: Copy): void {
    copy.proc!.kill(copy.graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
    if (copy.graceMs > 0) copy.kill = setTimeout(() => copy.proc!.kill('SIGKILL'), copy.graceMs);
  }

  private ids(spec: ServiceSpec): CopyIds {
    return { name: spec.name, generation: spec.generation, restarts: spec.restarts };
  }

  private state(copy: Copy): CopyState {
    return { generation: copy.generation, restarts: copy.restarts, stopping: copy.stopping, ready: copy.ready, ...(copy.status !== undefined && { status: copy.status }) };
  }
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // nothing left in it
  }
}

/** Starts the guard of the group `pgid` and resolves once it runs (a copy is never let through its gate unguarded). */
function startGuard(pgid: number): Promise<ChildProcess> {
  const guard = spawn('/bin/sh', [...GUARD, String(pgid)], { stdio: ['pipe', 'ignore', 'ignore'] });
  guard.stdin!.on('error', () => undefined);
  // It must not keep a stopping agent alive: the agent's exit is what it waits for.
  guard.unref();
  (guard.stdin as unknown as { unref(): void }).unref();
  return new Promise((resolve, reject) => {
    guard.once('spawn', () => resolve(guard));
    guard.once('error', reject);
  });
}

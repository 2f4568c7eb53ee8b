import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../src/shared/logger.js';
import type { StepName } from '../src/shared/messages.js';
import { spareSpec, type SpareProcesses } from './spare-process.js';
import { StepError } from './step-error.js';

const TAIL_BYTES = 4096;
const KILL_GRACE_MS = 5000;

export type RunOptions = {
  step: StepName;
  cwd: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  log: Logger;
  signal?: AbortSignal;
  /** Records the started process before it may run (see launch). */
  track?: Track;
  /** Spare gates to start the command from (see spare-process.ts). */
  spares?: SpareProcesses;
};

/** Durably records a step's process group; the process runs only once this resolved. */
export type Track = (pid: number, argv0: string) => Promise<void>;

/** How a process ended; `error` is set when it could not be started at all. */
export type ProcessExit = { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; tail: string; error: Error | null };

export type ProcessOptions = {
  cwd?: string;
  env: NodeJS.ProcessEnv;
  /** Terminate the process after this long (none: let it run). */
  timeoutMs?: number;
  /** Between SIGTERM and SIGKILL when terminating. */
  killGraceMs?: number;
  /** Characters of output kept for `ProcessExit.tail` (default 4096). */
  tailChars?: number;
  /** Start the process now but hold it before exec until `open()` (see GATE). */
  gated?: boolean;
  /** A gated process is taken from these when its values allow (see spare-process.ts), else forked. */
  spares?: SpareProcesses;
  onLine?(stream: 'stdout' | 'stderr', line: string): void;
};

export type RunningProcess = {
  /** Also its process group id; undefined when it could not be started. */
  readonly pid?: number;
  readonly exited: Promise<ProcessExit>;
  /** Lets a gated process exec its argv; nothing for one that was not gated. */
  open(): void;
  /** Signals the whole process group. */
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM now, SIGKILL after the grace period if it is still there. */
  terminate(): void;
};

/** Why a process did not succeed, in words: it could not start, was killed, or exited non-zero. */
export function describeExit(argv: readonly string[], exit: Pick<ProcessExit, 'code' | 'signal' | 'error'>): string {
  if (exit.error) return `cannot run ${argv[0]}: ${exit.error.message}`;
  return exit.signal ? `killed by ${exit.signal}` : `exited with status ${exit.code}`;
}

/**
 * The gate of a process started ahead of time: a fixed script that waits for one line on stdin,
 * then execs its positional arguments. The argv is only ever "$@", passed to execve unchanged,
 * never parsed by the shell. Forking a large Node process takes milliseconds of CPU; releasing a
 * gate is one pipe write, so synchronised starts do not depend on how fast each host forks.
 * If the agent dies first, the pipe closes, `read` fails and nothing runs.
 */
const GATE = ['/bin/sh', '-c', 'read -r _ && exec "$@"', 'pushfleet-gate'];

/** Keeps the last few KB of a stream, for the state message of a failed step. */
class Tail {
  private text = '';
  constructor(private readonly max: number) {}
  push(chunk: string): void {
    this.text = (this.text + chunk).slice(-this.max);
  }
  toString(): string {
    return this.text;
  }
}

/**
 * Starts one argv (no shell) in its own process group, so that signals reach whatever a wrapper
 * script started too. Collects the output tail, passes each line to `onLine`, and terminates the
 * group on timeout. Never rejects: `exited` says how it ended.
 */
export function startProcess(argv: readonly string[], opts: ProcessOptions): RunningProcess {
  const [file, ...args] = opts.gated ? [...GATE, ...argv] : argv;
  const spec = opts.gated && opts.spares ? spareSpec(argv, opts.cwd ?? process.cwd(), opts.env) : null;
  const child =
    (spec !== null && opts.spares!.take(spec)) ||
    spawn(file!, args, { cwd: opts.cwd, env: opts.env, stdio: [opts.gated ? 'pipe' : 'ignore', 'pipe', 'pipe'], detached: true });
  return followProcess(child, opts);
}

/**
 * The RunningProcess of a child spawned `detached` (its own process group): output tail and
 * lines, kill and terminate of the group, the timeout, and how it ended. `open` ends its stdin
 * after one empty line (the gate's).
 */
export function followProcess(child: ChildProcess, opts: Pick<ProcessOptions, 'timeoutMs' | 'killGraceMs' | 'tailChars' | 'onLine'>): RunningProcess {
  const tail = new Tail(opts.tailChars ?? TAIL_BYTES);
  child.stdin?.on('error', () => undefined); // the gate may be gone already: its exit says why
  let timedOut = false;
  let exited = false;
  const kill = (signal: NodeJS.Signals) => {
    if (exited || child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const terminate = () => {
    kill('SIGTERM');
    setTimeout(() => kill('SIGKILL'), opts.killGraceMs ?? KILL_GRACE_MS).unref();
  };
  const timer =
    opts.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          terminate();
        }, opts.timeoutMs);

  for (const [name, stream] of [['stdout', child.stdout!], ['stderr', child.stderr!]] as const) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      tail.push(chunk);
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) opts.onLine?.(name, line);
    });
    stream.on('end', () => {
      if (partial) opts.onLine?.(name, partial);
    });
  }
  const done = new Promise<ProcessExit>((resolve) => {
    const finish = (exit: Omit<ProcessExit, 'tail' | 'timedOut'>) => {
      exited = true;
      clearTimeout(timer);
      resolve({ ...exit, timedOut, tail: tail.toString() });
    };
    child.on('error', (error) => finish({ code: null, signal: null, error }));
    child.on('close', (code, signal) => finish({ code, signal, error: null }));
  });
  return { pid: child.pid, exited: done, open: () => child.stdin?.end('\n'), kill, terminate };
}

/**
 * Starts a process that `track` records first: held at the gate until the record is written, so
 * a process of a step is never running unrecorded (if the agent dies before, the gate's pipe
 * closes and nothing runs). Without `track`, starts it at once.
 */
export async function launch(argv: readonly string[], opts: ProcessOptions, track: Track | undefined): Promise<RunningProcess> {
  const proc = startProcess(argv, { ...opts, gated: track !== undefined });
  if (!track || proc.pid === undefined) return proc;
  try {
    await track(proc.pid, argv[0]!);
  } catch (err) {
    proc.kill('SIGKILL');
    await proc.exited;
    throw err;
  }
  proc.open();
  return proc;
}

/**
 * Runs one argv to completion as an update step, logging each output line and killing the whole
 * group on timeout. Rejects with a StepError carrying the output tail.
 */
export async function runCommand(argv: readonly string[], opts: RunOptions): Promise<void> {
  const proc = await launch(
    argv,
    { cwd: opts.cwd, env: opts.env, timeoutMs: opts.timeoutMs, spares: opts.spares, onLine: (stream, line) => opts.log.info({ step: opts.step, stream }, line) },
    opts.track,
  );
  const onAbort = () => proc.kill('SIGTERM');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const exit = await proc.exited;
  opts.signal?.removeEventListener('abort', onAbort);
  if (exit.error) throw new StepError(opts.step, describeExit(argv, exit));
  if (exit.code === 0) return;
  const why = exit.timedOut ? `timed out after ${opts.timeoutMs / 1000} s` : describeExit(argv, exit);
  throw new StepError(opts.step, `${argv.join(' ')} ${why}`, exit.tail);
}

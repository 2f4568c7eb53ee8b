import { spawn } from 'node:child_process';
import type { Logger } from '../src/shared/logger.js';
import type { StepName } from '../src/shared/messages.js';
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
};

/** Keeps the last few KB of a stream, for the state message of a failed step. */
class Tail {
  private text = '';
  push(chunk: string): void {
    this.text = (this.text + chunk).slice(-TAIL_BYTES);
  }
  toString(): string {
    return this.text;
  }
}

/**
 * Runs one argv (no shell) in its own process group, logging each output line and killing the
 * whole group on timeout. Rejects with a StepError carrying the output tail.
 */
export function runCommand(argv: readonly string[], opts: RunOptions): Promise<void> {
  const [file, ...args] = argv;
  const tail = new Tail();
  return new Promise((resolve, reject) => {
    const child = spawn(file!, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let timedOut = false;
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS).unref();
    }, opts.timeoutMs);
    const onAbort = () => killGroup('SIGTERM');
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    for (const [name, stream] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        tail.push(chunk);
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) opts.log.info({ step: opts.step, stream: name }, line);
      });
      stream.on('end', () => {
        if (partial) opts.log.info({ step: opts.step, stream: name }, partial);
      });
    }
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new StepError(opts.step, `cannot run ${file}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (code === 0) return resolve();
      const why = timedOut
        ? `timed out after ${opts.timeoutMs / 1000} s`
        : signal
          ? `killed by ${signal}`
          : `exited with status ${code}`;
      reject(new StepError(opts.step, `${argv.join(' ')} ${why}`, tail.toString()));
    });
  });
}

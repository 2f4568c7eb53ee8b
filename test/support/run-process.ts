import { spawn, type ChildProcess } from 'node:child_process';
import type { Cleanup } from './cleanup.js';

export type ProcessResult = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

/** Runs any executable to completion (no shell), optionally feeding stdin; never rejects on a non-zero exit. */
export function runProcess(
  file: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    // A child that exits without reading its input is not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Formats a result for an assertion message, so a failure shows what the process said. */
export const show = (r: ProcessResult): string => `exit ${r.code ?? r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

export type ServiceProcess = { child: ChildProcess; output(): string; exited: Promise<number | null> };

/** Starts a long-running executable (no shell), stdout and stderr collected together; cleanup SIGKILLs it if still running. */
export function startService(cleanup: Cleanup, file: string, args: readonly string[], env: NodeJS.ProcessEnv): ServiceProcess {
  const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanup.defer(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exited;
  });
  return { child, output: () => output, exited };
}

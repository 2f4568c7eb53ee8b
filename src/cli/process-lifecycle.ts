import { InvalidArgumentError, type CommanderError } from 'commander';
import { ConfigError } from '../shared/config-file.js';

/** Exit codes: 0 done, 1 failed at run time, 2 bad usage or config (fix the command or file). */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/**
 * For `exitOverride` on every command and subcommand (addCommand does not pass it on): help and
 * version exit 0, any other commander error is bad usage.
 */
export function exitOnCommanderError(err: CommanderError): never {
  process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
}

/** An expected failure of a command (broker unreachable, …): printed as one line, exit 1. */
export class CommandError extends Error {
  override name = 'CommandError';
}

/** Runs a command's body, turning a ConfigError into a one-line message and exit code 2. */
export async function runCommand(body: () => Promise<number | void>): Promise<void> {
  try {
    const code = await body();
    if (typeof code === 'number') process.exitCode = code;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pushfleet: ${err.message}\n`);
      process.exitCode = EXIT.usage;
      return;
    }
    process.stderr.write(`pushfleet: ${err instanceof CommandError ? err.message : ((err as Error).stack ?? err)}\n`);
    process.exitCode = EXIT.failure;
  }
}

/** Keeps a service up until SIGTERM/SIGINT, then stops it gracefully; a second signal forces exit. */
export function stopOnSignal(stop: () => Promise<void>, log: { info(o: object, m: string): void }): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(EXIT.failure);
      stopping = true;
      log.info({ signal }, 'shutting down');
      stop().then(resolve, (err) => {
        process.stderr.write(`pushfleet: error while stopping: ${(err as Error).message}\n`);
        process.exitCode = EXIT.failure;
        resolve();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/** A commander argument parser that accepts a value when `ok` says so, else names what it expected. */
export const checkedArg =
  (ok: (value: string) => boolean, expected: string) =>
  (value: string): string => {
    if (!ok(value)) throw new InvalidArgumentError(`expected ${expected}`);
    return value;
  };

export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
}

export function parsePositiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

import { InvalidArgumentError, type CommanderError } from 'commander';
import { ConfigError } from '../shared/config-file.js';
import type { Logger } from '../shared/logger.js';
import { serviceManager, type ServiceManager } from '../shared/sd-notify.js';
import { firstLine, StartupError } from '../shared/startup.js';

/**
 * Exit codes: 0 done; 1 failed at run time (trying again may work); 2 a person must act first:
 * bad usage or config, or a start that a restart cannot fix (a damaged state database, a native
 * module built for another Node). systemd units restart on 1, not on 2.
 */
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

/**
 * Runs a command's body, turning a ConfigError into a one-line message and exit code 2, a
 * StartupError into one line and its own exit code, and any other error into one line and 1.
 */
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
    if (err instanceof StartupError) {
      process.stderr.write(`pushfleet: ${err.message}\n`);
      process.exitCode = err.exitCode;
      // The failed start closed what it opened; should a library still hold a handle, the
      // process must end all the same, or systemd would see a live service that serves nothing.
      setTimeout(() => process.exit(), 2000).unref();
      return;
    }
    // One line whatever failed; the stack of an unexpected error only on request.
    const detail = err instanceof CommandError || !process.env.PUSHFLEET_DEBUG ? firstLine(err) : ((err as Error).stack ?? String(err));
    process.stderr.write(`pushfleet: ${detail}${err instanceof CommandError || process.env.PUSHFLEET_DEBUG ? '' : ' (PUSHFLEET_DEBUG=1 shows where)'}\n`);
    process.exitCode = EXIT.failure;
  }
}

/**
 * Keeps a service up until SIGTERM/SIGINT, then stops it gracefully; a second signal forces exit.
 * `already`: a signal that came while the service was starting, acted on at once.
 */
export function stopOnSignal(stop: () => Promise<void>, log: { info(o: object, m: string): void }, already?: NodeJS.Signals): Promise<void> {
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
    if (already) onSignal(already);
  });
}

/** How long a signal that came during a service's start waits for the start to finish. */
const START_STOP_WAIT_MS = 5000;

/** What a service's start gives back: a status line for systemd, and how to stop it. */
export type Service = { status(): string; stop(): Promise<void> };

/**
 * Runs a service (hub, agent) until SIGTERM/SIGINT. It tells systemd READY=1 (and starts the
 * watchdog pings) only once `start` resolved, and STOPPING=1 when a signal came. A start that
 * fails has undone itself: its error goes out as one line (the stack, for an unexpected one,
 * in the log) and the process exits non-zero.
 */
export async function serve(name: string, log: Logger, start: (manager: ServiceManager) => Promise<Service>): Promise<void> {
  const manager = serviceManager(log);
  // A signal's default action would end the process in the middle of its start (systemd stopping
  // a unit that is still starting): held until the start is done, then the service is stopped.
  // A start that waits on something (an agent's broker that does not answer) is not waited for
  // past START_STOP_WAIT_MS: the signal then does what it did by default.
  let signalled: NodeJS.Signals | undefined;
  let giveUp: NodeJS.Timeout | undefined;
  const duringStart = (signal: NodeJS.Signals) => {
    if (signalled) process.exit(EXIT.failure);
    signalled = signal;
    log.info({ signal }, `signal while starting: the ${name} stops once started`);
    giveUp = setTimeout(() => {
      log.warn({ signal, waitedMs: START_STOP_WAIT_MS }, `the ${name} is still starting: ending it without a graceful stop`);
      process.off('SIGTERM', duringStart).off('SIGINT', duringStart);
      process.kill(process.pid, signal);
    }, START_STOP_WAIT_MS).unref();
  };
  process.on('SIGTERM', duringStart).on('SIGINT', duringStart);
  let service: Service;
  try {
    service = await start(manager);
  } catch (err) {
    if (err instanceof StartupError || err instanceof ConfigError) throw err;
    log.error({ err }, `${name} did not start`);
    throw new StartupError(`${name} did not start: ${firstLine(err)}`);
  } finally {
    clearTimeout(giveUp);
    process.off('SIGTERM', duringStart).off('SIGINT', duringStart);
  }
  manager.ready(service.status());
  await stopOnSignal(
    () => {
      manager.stopping(`stopping the ${name}`);
      return service.stop();
    },
    log,
    signalled,
  );
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

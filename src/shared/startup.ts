import type { Logger } from './logger.js';

/**
 * A start-up that cannot complete, said in one line a person can act on. `exitCode` 2 means a
 * restart cannot fix it (a damaged file, a broken install): systemd's RestartPreventExitStatus=2
 * then stops retrying; 1 means it may pass (a port in use).
 */
export class StartupError extends Error {
  override name = 'StartupError';
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

/** The first line of an error's message: native loaders and SQLite put details after it. */
export const firstLine = (err: unknown): string => String(err instanceof Error ? err.message : err).split('\n', 1)[0]!.trim();

/**
 * Undo steps, run newest first. A service's start adds the undo of each step once the step is
 * done, so a failed start closes exactly what it opened, and stopping is the same unwinding.
 */
export class Teardown {
  private readonly undos: { what: string; undo: () => unknown }[] = [];
  private running?: Promise<void>;

  constructor(private readonly log: Logger) {}

  add(what: string, undo: () => unknown): void {
    this.undos.push({ what, undo });
  }

  /** Runs every undo once, even after one fails; rejects with the first failure at the end. */
  run(): Promise<void> {
    return (this.running ??= this.unwind());
  }

  private async unwind(): Promise<void> {
    let failure: unknown;
    for (let step = this.undos.pop(); step; step = this.undos.pop()) {
      try {
        await step.undo();
      } catch (err) {
        this.log.warn({ step: step.what, err }, 'could not undo a start-up step');
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  }
}

/** Runs `start` with a fresh teardown; when it throws, undoes whatever it did and rethrows. */
export async function startOrUndo<T>(log: Logger, start: (teardown: Teardown) => Promise<T>): Promise<T> {
  const teardown = new Teardown(log);
  try {
    return await start(teardown);
  } catch (err) {
    // The start's own error is the one to report; an undo that failed is only logged.
    await teardown.run().catch(() => undefined);
    throw err;
  }
}

/** A listen error (a port in use, …) as one line naming the setting that changes the address. */
export function listenError(err: unknown, what: string, address: string, setting: string): unknown {
  const reasons: Record<string, string> = {
    EADDRINUSE: `address already in use; stop whatever holds it or set ${setting}`,
    EACCES: `permission denied; use a port above 1023 or set ${setting}`,
    EADDRNOTAVAIL: `not an address of this machine; set ${setting}`,
  };
  const reason = reasons[(err as NodeJS.ErrnoException).code ?? ''];
  return reason ? new StartupError(`cannot listen for ${what} on ${address}: ${reason}`) : err;
}

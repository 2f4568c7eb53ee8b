import type { Logger } from '../src/shared/logger.js';
import type { HealthConfig } from './config.js';
import { runCommand, type Track } from './run-command.js';
import { StepError } from './step-error.js';

export type HealthDeps = { cwd: string; env: NodeJS.ProcessEnv; log: Logger; sleep(ms: number): Promise<void>; now(): number; track?: Track };

/** One probe: an HTTP 2xx, or the command exiting 0. Rejects with what went wrong. */
async function probe(health: HealthConfig, remainingMs: number, deps: HealthDeps): Promise<void> {
  if ('command' in health) {
    await runCommand(health.command, { step: 'health', cwd: deps.cwd, env: deps.env, timeoutMs: remainingMs, log: deps.log, track: deps.track });
    return;
  }
  const status = await httpStatus(health.url, remainingMs).catch((err: Error) => {
    throw new StepError('health', `${health.url}: ${err.message}`);
  });
  if (status < 200 || status >= 300) throw new StepError('health', `${health.url} answered ${status}`);
}

/**
 * The status of one GET, redirects not followed, the body not read. node:http, loaded on the first
 * probe, rather than fetch: fetch loads undici, megabytes an idle agent would keep ever after; and
 * no keep-alive socket is left open to the app.
 */
async function httpStatus(url: string, timeoutMs: number): Promise<number> {
  const { get } = url.startsWith('https:') ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      resolve(res.statusCode ?? 0);
      res.destroy();
    });
    req.on('error', (err) => reject(err.name === 'AbortError' ? new Error(`no answer within ${timeoutMs} ms`) : err));
  });
}

/** Probes every `interval` until healthy, failing once `timeout` has passed. */
export async function waitHealthy(health: HealthConfig, deps: HealthDeps): Promise<void> {
  const deadline = deps.now() + health.timeout * 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await probe(health, Math.max(deadline - deps.now(), 1), deps);
    } catch (err) {
      if (!(err instanceof StepError)) throw err; // not a probe's answer (the journal could not be written)
      const last = err;
      if (deps.now() + health.interval * 1000 >= deadline) {
        throw new StepError('health', `unhealthy after ${health.timeout} s (${attempt} probes): ${last.message}`, last.outputTail);
      }
    }
    await deps.sleep(health.interval * 1000);
  }
}

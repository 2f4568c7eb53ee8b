/**
 * The fleet simulator: N simulated agents (SimAgent.start, the real agent protocol) spread over a
 * few worker processes, each agent with its own broker account. Used by `npm run bench fleet` and
 * by the fleet tests; the parent only counts, the workers do the MQTT.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { generateCredential } from '../../src/hub/users/password-hash.js';
import { newUser, readUsers, writeUsers } from '../../src/hub/users/users-file.js';
import type { FleetReport, FromWorker, ToWorker } from './fleet-protocol.js';

/** The compiled worker: benches run this file from dist/, tests import it from source. */
const WORKER = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? './fleet-worker.js' : '../../dist/bench/fleet/fleet-worker.js', import.meta.url));

export const fleetIds = (n: number): string[] => Array.from({ length: n }, (_, i) => `sim-${String(i).padStart(5, '0')}`);

/**
 * Adds an agent account (role agent, named as the agent) per id to the hub's users file, with
 * generated passwords as `pushfleet users add` makes them; returns the passwords.
 */
export function addFleetAccounts(usersFile: string, ids: readonly string[]): Map<string, string> {
  const users = readUsers(usersFile);
  const passwords = new Map<string, string>();
  for (const id of ids) {
    const { password, hash } = generateCredential();
    users.set(id, newUser('agent', hash));
    passwords.set(id, password);
  }
  writeUsers(usersFile, users);
  return passwords;
}

export type FleetOptions = {
  /** Broker URL without credentials. */
  url: string;
  /** Agent id → password; for a broker that lets anyone in, any string. */
  accounts: ReadonlyMap<string, string>;
  /** Worker processes; default one per 2,500 agents, at most 4. */
  workers?: number;
  rollout?: boolean;
  stepMs?: number;
  heartbeatMs?: number;
  /** Logins in flight per worker while starting. */
  concurrency?: number;
};

/** Epoch ms with sub-ms precision, the clock the workers stamp events with. */
export const wallNow = () => performance.timeOrigin + performance.now();

export class Fleet {
  private constructor(
    private readonly workers: ChildProcess[],
    readonly size: number,
  ) {}

  /** Starts every agent; resolves once each has announced itself once. */
  static async start(opts: FleetOptions): Promise<Fleet> {
    const entries = [...opts.accounts];
    const count = opts.workers ?? Math.min(4, Math.max(1, Math.ceil(entries.length / 2500)));
    const workers = Array.from({ length: count }, () => fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const fleet = new Fleet(workers, entries.length);
    try {
      await Promise.all(
        workers.map((w, i) => {
          const share = entries.filter((_, k) => k % count === i).map(([id, password]) => ({ id, password }));
          const msg: ToWorker = { type: 'start', url: opts.url, agents: share, rollout: opts.rollout ?? false, stepMs: opts.stepMs ?? 0, heartbeatMs: opts.heartbeatMs ?? 30_000, concurrency: opts.concurrency ?? 100 };
          return fleet.ask(w, msg, 'started');
        }),
      );
    } catch (err) {
      await fleet.stop();
      throw err;
    }
    return fleet;
  }

  /** Every worker's counts for events at or after `since`, added up. */
  async report(since: number, sha: string | null): Promise<FleetReport> {
    const parts = await Promise.all(this.workers.map((w) => this.ask(w, { type: 'report', since, sha }, 'report')));
    const sum = (key: 'started' | 'onlineSince' | 'atSha' | 'errorCount') => parts.reduce((n, p) => n + p.report[key], 0);
    const max = (key: 'lastOnline' | 'lastHead') => Math.max(0, ...parts.map((p) => p.report[key]));
    const errorKinds: Record<string, number> = {};
    for (const [kind, count] of parts.flatMap((p) => Object.entries(p.report.errorKinds))) errorKinds[kind] = (errorKinds[kind] ?? 0) + count;
    return { started: sum('started'), onlineSince: sum('onlineSince'), lastOnline: max('lastOnline'), atSha: sum('atSha'), lastHead: max('lastHead'), errorCount: sum('errorCount'), errorKinds, errors: parts.flatMap((p) => p.report.errors) };
  }

  /** Polls until `done` holds for the fleet's report; the report it held for, with the first errors seen while waiting. */
  async until(since: number, sha: string | null, done: (r: FleetReport) => boolean, timeoutMs: number, what: string): Promise<FleetReport> {
    const end = Date.now() + timeoutMs;
    const errors: string[] = [];
    for (;;) {
      const r = await this.report(since, sha);
      errors.push(...r.errors.slice(0, 5 - errors.length));
      if (done(r)) return { ...r, errors };
      if (Date.now() > end) throw new Error(`fleet: ${what} not reached in ${timeoutMs} ms: ${r.onlineSince} of ${this.size} online since, ${r.atSha} at the head; ${r.errorCount} errors: ${errors.join('; ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.exitCode !== null || w.signalCode !== null) return;
        const exited = once(w, 'exit');
        w.send({ type: 'stop' } satisfies ToWorker);
        const timer = setTimeout(() => w.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  get pids(): number[] {
    return this.workers.map((w) => w.pid!);
  }

  private ask<T extends FromWorker['type']>(w: ChildProcess, msg: ToWorker, answer: T): Promise<Extract<FromWorker, { type: T }>> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.type === 'failed') return done(() => reject(new Error(`fleet worker: ${m.error}`)));
        if (m.type === answer) done(() => resolve(m as Extract<FromWorker, { type: T }>));
      };
      const onExit = (code: number | null) => done(() => reject(new Error(`fleet worker exited (${code})`)));
      const done = (settle: () => void) => {
        w.off('message', onMessage);
        w.off('exit', onExit);
        settle();
      };
      w.on('message', onMessage);
      w.once('exit', onExit);
      w.send(msg);
    });
  }
}

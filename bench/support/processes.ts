import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { harnessUrl } from '../../test/support/broker-users.js';
import type { Cleanup } from '../../test/support/cleanup.js';
import { freePort } from '../../test/support/ports.js';
import { waitFor } from '../../test/support/wait.js';

/** The built CLI, resolved from dist/bench/support/ (this file's compiled location). */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export const BENCH_SECRET = 'bench-webhook-secret-0123456789';

/** A real `pushfleet` process; keeps the tail of its output for error messages. */
export class BenchProcess {
  private readonly child: ChildProcess;
  private output = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}, nodeFlags: string[] = []) {
    this.child = spawn(process.execPath, [...nodeFlags, CLI, ...args], {
      env: { ...process.env, PUSHFLEET_LOG_JSON: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: string) => (this.output = (this.output + chunk).slice(-4000));
    this.child.stdout!.setEncoding('utf8').on('data', keep);
    this.child.stderr!.setEncoding('utf8').on('data', keep);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  tail(): string {
    return this.output;
  }

  /** SIGTERM (graceful: lets --cpu-prof write its profile), SIGKILL if it lingers. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Resident set size of a live process in bytes, from /proc (Linux); NaN if unreadable. */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) used so far by a process, or by one of its threads (`tid`). */
export function cpuSeconds(pid: number, tid?: number): number {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (clock ticks).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Samples a process's RSS every `everyMs`; `peak()` is the highest seen since the last reset. */
export class RssSampler {
  private max = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number, everyMs = 100) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.sample();
  }

  private sample(): void {
    const rss = rssBytes(this.pid);
    if (rss > this.max) this.max = rss;
  }

  reset(): void {
    this.max = 0;
    this.sample();
  }

  peak(): number {
    this.sample();
    return this.max;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** `hubPublicKey`: the hub.pub agents of this hub need (made on its first start). */
export type HubProcess = { proc: BenchProcess; webhookUrl: string; mqttUrl: string; httpPort: number; hubPublicKey: string };

/**
 * `pushfleet hub` as a child process on free ports: its embedded aedes broker, or `mqttUrl`.
 * Set BENCH_CPU_PROF=<dir> to run it under `node --cpu-prof` (profile written at stop).
 */
/**
 * The hub as a process. `secure` (the default): broker accounts and signing on, as shipped; the
 * bench's own clients log in as a `harness` account (role hub) made before the start. Off: an
 * anonymous broker and no signing, to measure what the two cost side by side.
 */
export async function startHubProcess(cleanup: Cleanup, opts: { mqttUrl?: string; logLevel?: string; secure?: boolean; config?: Record<string, unknown> } = {}): Promise<HubProcess> {
  const stateDir = mkdtempSync(join(tmpdir(), 'pushfleet-bench-hub-'));
  cleanup.defer(() => rmSync(stateDir, { recursive: true, force: true }));
  const httpPort = await freePort();
  const brokerPort = await freePort();
  const args = ['hub', '--host', '127.0.0.1', '--port', String(httpPort), '--state-dir', stateDir, '--log-level', opts.logLevel ?? 'warn'];
  const secure = opts.secure ?? true;
  // `config`: more of the hub's config file (engines' settings), beside what `secure` off sets.
  if (!secure || opts.config) {
    const config = join(stateDir, 'hub.json');
    writeFileSync(config, JSON.stringify({ ...opts.config, ...(!secure && { signing: { enabled: false }, broker: { allowAnonymous: true } }) }));
    args.push('--config', config);
  }
  if (opts.mqttUrl) args.push('--mqtt-url', opts.mqttUrl);
  else args.push('--broker-port', String(brokerPort));
  const brokerUrl = `mqtt://127.0.0.1:${brokerPort}`;
  const mqttUrl = opts.mqttUrl ?? (secure ? await harnessUrl(stateDir, brokerUrl) : brokerUrl);
  const profDir = process.env.BENCH_CPU_PROF;
  const proc = new BenchProcess(args, { PUSHFLEET_WEBHOOK_SECRET: BENCH_SECRET }, profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []);
  cleanup.defer(() => proc.stop());
  const base = `http://127.0.0.1:${httpPort}`;
  await waitFor(
    () => `hub ready on ${base}/readyz\n${proc.tail()}`,
    async () => {
      if (!proc.alive) throw new Error(`hub exited before it was ready\n${proc.tail()}`);
      try {
        return (await fetch(`${base}/readyz`)).status === 200;
      } catch {
        return false;
      }
    },
    20_000,
  );
  return { proc, httpPort, webhookUrl: `${base}/webhook`, mqttUrl, hubPublicKey: join(stateDir, 'hub.pub') };
}

/** Progress on stderr, so stdout keeps only the figures. */
export const progress = (msg: string): void => void process.stderr.write(`  · ${msg}\n`);

export const mb = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

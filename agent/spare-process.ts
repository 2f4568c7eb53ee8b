import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';

/**
 * A gate (run-command.ts GATE) forked before its command is known. Forking the agent, a large
 * Node process, takes milliseconds that grow with its memory (3 to 8 ms a step under load, three
 * steps an update, each on the way from push to restart); a spare is forked while the previous
 * step runs, so a step starts with a pipe write. It reads the working directory, the environment
 * and the argv from stdin, one per line, then waits for one more line (the gate's `open`) before
 * it execs, so the process is recorded before it runs exactly as a gated one is; if the agent dies
 * first, a `read` fails and nothing runs. The values only ever go through "$…" expansions and
 * `export "NAME=value"`, never parsed as shell text.
 */
const SCRIPT = [
  'IFS= read -r _pf_dir || exit 125',
  'cd -- "$_pf_dir" || exit 125',
  'unset OLDPWD',
  'IFS= read -r _pf_n || exit 125',
  'while [ "$_pf_n" -gt 0 ] && IFS= read -r _pf_v; do export "$_pf_v" || exit 125; _pf_n=$((_pf_n - 1)); done',
  'IFS= read -r _pf_n || exit 125',
  'set --',
  'while [ "$_pf_n" -gt 0 ] && IFS= read -r _pf_v; do set -- "$@" "$_pf_v"; _pf_n=$((_pf_n - 1)); done',
  'unset _pf_dir _pf_n _pf_v',
  'read -r _ && exec "$@"',
].join('\n');

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * What a spare reads to run `argv` in `cwd` with exactly `env`; null when the values cannot travel
 * as lines (a newline or NUL in one, a name the shell cannot export or one of the script's own):
 * such a command is forked as before.
 */
export function spareSpec(argv: readonly string[], cwd: string, env: NodeJS.ProcessEnv): string | null {
  const vars = Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [[k, v] as const]));
  if (argv.length === 0 || vars.some(([k]) => !NAME.test(k) || k.startsWith('_pf_'))) return null;
  const lines = [cwd, String(vars.length), ...vars.map(([k, v]) => `${k}=${v}`), String(argv.length), ...argv];
  if (lines.some((l) => /[\n\0]/.test(l))) return null;
  return lines.map((l) => `${l}\n`).join('');
}

const streams = (child: ChildProcess) => [child.stdin, child.stdout, child.stderr] as unknown as (Socket | null)[];

/** Spares kept ready: an update's fetch, checkout and restart each take one. */
const CAPACITY = 3;
/** Spares are forked once no step has started for this long: forking blocks the event loop, so not while an update hurries. */
const QUIET_MS = 50;

/**
 * Spare gates for one app's steps, forked ahead in a quiet moment (between updates, or during a
 * long step) and killed by `close`. With none ready, a step forks one at once, as before. A
 * waiting spare keeps neither the agent nor its event loop alive.
 */
export class SpareProcesses {
  private readonly ready: ChildProcess[] = [];
  private closed = false;
  private timer: NodeJS.Timeout | undefined;

  constructor() {
    this.fillSoon();
  }

  /** A spare told `spec` (see spareSpec), waiting for its open line; null once closed. */
  take(spec: string): ChildProcess | null {
    if (this.closed) return null;
    let child: ChildProcess | undefined;
    while ((child = this.ready.shift()) && (child.exitCode !== null || child.signalCode !== null));
    child ??= this.fork();
    this.fillSoon();
    if (child.pid === undefined) return null;
    child.ref();
    for (const s of streams(child)) s?.ref();
    child.stdin!.write(spec);
    return child;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const child of this.ready.splice(0)) if (child.pid !== undefined) child.kill('SIGKILL');
  }

  private fillSoon(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fill(), QUIET_MS).unref();
  }

  private fill(): void {
    while (!this.closed && this.ready.length < CAPACITY) {
      const child = this.fork();
      child.unref();
      for (const s of streams(child)) s?.unref();
      this.ready.push(child);
    }
  }

  private fork(): ChildProcess {
    const child = spawn('/bin/sh', ['-c', SCRIPT, 'pushfleet-spare'], { cwd: '/', env: {}, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    child.on('error', () => undefined); // the taker's exit says why
    child.stdin!.on('error', () => undefined);
    return child;
  }
}

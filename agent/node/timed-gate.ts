import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { followProcess, type ProcessOptions, type RunningProcess } from '../run-command.js';

const BASH = '/bin/bash';
/**
 * The gate sleeps until this long before its instant and spins the rest. A wake-up from `read -t`
 * comes 0.1 to 0.3 ms late on a busy 2-core VM, seldom more than 1 ms; a longer spin would make the
 * gate a busy process that the scheduler slices with whatever else runs.
 */
const SPIN_US = 1000;

/**
 * The gate of a timed start, in bash ≥ 5 ($EPOCHREALTIME: CLOCK_REALTIME in µs; `read -t` with
 * fractions). Its first line on stdin is the start instant in µs since the epoch. It sleeps in
 * `read -t` until shortly before, spins on the clock for the rest, writes the instant it went on
 * fd 3 (a file: writing it wakes nobody) and execs its positional arguments. So nothing of the
 * agent (its event loop, a pipe wake-up, the scheduler's hand-off) sits between the instant and
 * the exec. The end of stdin (the agent died) or any further line ends it without running
 * anything: `read` returns at once in the sleep, `read -t 0` sees it in the spin; stopping it is
 * SIGTERM to its group, as for any process. The argv is only ever "$@", and the instant must be
 * digits before any arithmetic sees it. EPOCHREALTIME has the locale's decimal point and `read -t`
 * wants ".", hence the digits-only forms; the spin compares strings of the same fixed width (the
 * instant written as EPOCHREALTIME writes it), a few µs a turn where arithmetic takes three times that.
 */
const SCRIPT = [
  'IFS= read -r _pf_at && [[ $_pf_at =~ ^[1-9][0-9]{6,17}$ ]] || exit 125',
  `while (( (_pf_left = _pf_at - \${EPOCHREALTIME//[!0-9]} - ${SPIN_US}) > 0 )); do`,
  "  printf -v _pf_t '%d.%06d' $((_pf_left / 1000000)) $((_pf_left % 1000000))",
  '  IFS= read -r -t "$_pf_t" _pf_t; (( $? > 128 )) || exit 125',
  'done',
  '_pf_t=${_pf_at:0:-6}${EPOCHREALTIME//[0-9]}${_pf_at: -6}',
  'while [[ $EPOCHREALTIME < "$_pf_t" ]]; do read -t 0 && exit 125; done',
  "printf '%s\\n' \"${EPOCHREALTIME//[!0-9]}\" >&3 || exit 125",
  'unset _pf_at _pf_left _pf_t',
  'exec "$@" 3>&- </dev/null',
].join('\n');

/**
 * Bash reads its options from these at start-up and rewrites them for its children, so an
 * environment with one would not reach the action as it was. Otherwise the action gets its
 * environment exactly, except that bash adds SHLVL=0 where there was none.
 */
const REWRITTEN = ['SHELLOPTS', 'BASHOPTS'];

/**
 * Whether timed starts can be released by their own gate on this host, for actions run with `env`:
 * the bash that does it, or why not (then the agent releases them, see action-launcher.ts).
 */
export async function timedGateShell(env: NodeJS.ProcessEnv): Promise<{ bash: string } | { why: string }> {
  const rewritten = REWRITTEN.filter((name) => env[name] !== undefined);
  if (rewritten.length) return { why: `bash would rewrite ${rewritten.join(' and ')} in the actions' environment` };
  const version = await new Promise<string | null>((resolve) => {
    execFile(BASH, ['--norc', '--noprofile', '-c', '(( BASH_VERSINFO[0] >= 5 )) && echo "$BASH_VERSION"'], { env: {}, timeout: 5000 }, (err, stdout) => resolve(err ? null : stdout.trim() || null));
  });
  return version ? { bash: version } : { why: `no bash ≥ 5 at ${BASH}` };
}

/** Bytes of the report file: one line of µs since the epoch fits with room to spare. */
const REPORT_BYTES = 32;
/**
 * The agent looks for the gate's report this long after the instant, then every POLL_MS until it
 * is there or the process ended: at the instant itself, a wake-up of this agent (and then of the
 * hub, told that the action started) would want a core while the actions exec.
 */
const REPORT_AFTER_MS = 5;
const POLL_MS = 5;

/** A file only this process and the gate hold (unlinked at once), its first block written so the gate's report needs no new space. */
function reportFile(): number {
  const path = join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `pushfleet-gate-${randomUUID()}`);
  const fd = openSync(path, 'wx+', 0o600);
  unlinkSync(path);
  try {
    writeSync(fd, Buffer.alloc(REPORT_BYTES), 0, REPORT_BYTES, 0); // positioned: the offset the gate writes at stays 0
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/**
 * Starts `argv` behind a timed gate, armed for `atUs` (µs since the epoch, CLOCK_REALTIME).
 * `released(us)` is called with the instant the gate went, a few ms after it did (and before
 * `exited` resolves); stopping or killing the process before then means the action never runs. It
 * is armed already, so `open()` does nothing. Throws when the report file cannot be made.
 */
export function startTimed(argv: readonly string[], opts: ProcessOptions, atUs: number, released: (us: number) => void): RunningProcess {
  const fd = reportFile();
  // No start-up files: bash would read ~/.bashrc because its stdin is a socket (as for ssh), and
  // -p ignores BASH_ENV and functions in the environment (both stay there for the action).
  const child = spawn(BASH, ['--norc', '--noprofile', '-p', '-c', SCRIPT, 'pushfleet-gate', ...argv], { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe', fd], detached: true });
  const proc = followProcess(child, opts);
  let reported = false;
  const check = () => {
    if (reported) return true;
    const buf = Buffer.alloc(REPORT_BYTES);
    const line = buf.toString('latin1', 0, readSync(fd, buf, 0, REPORT_BYTES, 0));
    const end = line.indexOf('\n');
    if (end < 0) return false;
    reported = true;
    child.stdin?.destroy(); // the action's stdin is /dev/null; this end is no longer a cancel line
    released(Number(line.slice(0, end)));
    return true;
  };
  const poll = () => void (check() || (timer = setTimeout(poll, POLL_MS)));
  let timer = setTimeout(poll, Math.max(0, atUs / 1000 - Date.now()) + REPORT_AFTER_MS);
  const exited = proc.exited.then((exit) => {
    clearTimeout(timer);
    check();
    closeSync(fd);
    return exit;
  });
  child.stdin?.write(`${Math.max(0, Math.round(atUs))}\n`);
  return { ...proc, exited, open: () => undefined };
}

import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { Command } from 'commander';
import type { MqttClient } from 'mqtt';
import { ConfigError } from '../shared/config-file.js';
import { SEM_DEFAULT_PREFIX } from '../shared/topics.js';
import { SemaphoreClient, SemaphoreError, type Lease } from '../semaphore-client/client.js';
import { EXIT, exitOnCommanderError, parsePositiveNumber, runCommand } from './process-lifecycle.js';
import { connectFromFlags, withMqttFlags, type MqttFlags } from './mqtt-flags.js';

type SemFlags = MqttFlags & { channel: string; prefix: string };
type RunFlags = SemFlags & { timeout: number; queueTimeout?: number };

/** Exit codes of `sem run` itself; otherwise it exits with the command's own code. */
const SEM_EXIT = { queueTimeout: 75 /* EX_TEMPFAIL: try again later */, notFound: 127, notExecutable: 126 } as const;

const say = (line: string) => process.stderr.write(`pushfleet sem: ${line}\n`);

function checkChannel(channel: string): void {
  if (!/^[^/+#\s]{1,200}$/.test(channel)) throw new ConfigError(`invalid --channel "${channel}": one topic level, without "/", "+", "#" or spaces`);
}

/** How long `sem` waits for the broker's CONNACK before it gives up with one line. */
const CONNECT_TIMEOUT_S = 10;

/** Connects, hands a client to `body`, and always disconnects. */
async function withSemaphore<T>(flags: SemFlags, body: (sem: SemaphoreClient, mqtt: MqttClient) => Promise<T>): Promise<T> {
  checkChannel(flags.channel);
  const mqtt = await connectFromFlags(flags, CONNECT_TIMEOUT_S);
  const sem = new SemaphoreClient(mqtt, { prefix: flags.prefix });
  mqtt.on('connect', () => sem.resync());
  try {
    return await body(sem, mqtt);
  } finally {
    await mqtt.endAsync();
  }
}

/** Runs argv (no shell) with inherited stdio, forwarding SIGINT/SIGTERM; resolves with a shell-style exit code. */
function runChild(argv: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward).on('SIGTERM', forward);
    const done = (code: number) => {
      process.off('SIGINT', forward).off('SIGTERM', forward);
      resolve(code);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      say(`cannot run ${argv[0]}: ${err.message}`);
      done(err.code === 'ENOENT' ? SEM_EXIT.notFound : SEM_EXIT.notExecutable);
    });
    child.once('exit', (code, signal) => done(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}

/** Waits for a slot (SIGINT/SIGTERM withdraws the registration), or returns the exit code to stop with. */
async function waitForSlot(sem: SemaphoreClient, flags: RunFlags): Promise<Lease | number> {
  const waiting = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    signalled = signal;
    waiting.abort();
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    return await sem.acquire(flags.channel, {
      timeout: flags.timeout,
      queueTimeout: flags.queueTimeout,
      signal: waiting.signal,
      onQueued: (position, total) => say(`waiting for a slot in "${flags.channel}": position ${position} of ${total}`),
    });
  } catch (err) {
    if (!(err instanceof SemaphoreError)) throw err;
    say(err.message);
    if (err.code === 'aborted') return 128 + constants.signals[signalled ?? 'SIGTERM'];
    return err.code === 'queue-timeout' ? SEM_EXIT.queueTimeout : EXIT.failure;
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}

async function semRun(argv: string[], flags: RunFlags): Promise<number> {
  return withSemaphore(flags, async (sem) => {
    const lease = await waitForSlot(sem, flags);
    if (typeof lease === 'number') return lease;
    lease.signal.addEventListener('abort', () => say(`${(lease.signal.reason as Error).message}; the command keeps running`));
    const code = await runChild(argv);
    // Exit 0 is success; anything else (including a signal) tells the hub the job gave up.
    await (code === 0 ? lease.release() : lease.abort());
    return code;
  });
}

const semFlags = (cmd: Command) =>
  withMqttFlags(cmd)
    .requiredOption('--channel <name>', 'semaphore channel (one topic level)')
    .option('--prefix <prefix>', 'topic prefix the hub serves (engines.semaphore.prefix)', SEM_DEFAULT_PREFIX);

export function semCommand(): Command {
  const run = semFlags(new Command('run'))
    .description('wait for a slot in a channel, run a command (no shell), then report finished (exit 0) or aborted; exits with its code')
    .requiredOption('--timeout <seconds>', 'how long the command may hold the slot before the hub takes it back', parsePositiveNumber)
    .option('--queue-timeout <seconds>', `give up after waiting this long (exit ${SEM_EXIT.queueTimeout})`, parsePositiveNumber)
    .argument('<command...>', 'the command and its arguments, after --')
    .action((argv: string[], flags: RunFlags) => runCommand(() => semRun(argv, flags)));
  const info = semFlags(new Command('info'))
    .description("print a channel's slots, queue and quotas as JSON")
    .action((flags: SemFlags) =>
      runCommand(() => withSemaphore(flags, async (sem) => void process.stdout.write(`${JSON.stringify(await sem.info(flags.channel), null, 2)}\n`))),
    );
  const sem = new Command('sem')
    .description('a semaphore over MQTT, compatible with coordinosaur clients: run commands one (or N) at a time across machines')
    .addCommand(run)
    .addCommand(info);
  // addCommand does not inherit main's exit handling: usage errors exit 2 here too.
  for (const cmd of [sem, run, info]) cmd.exitOverride(exitOnCommanderError);
  return sem;
}

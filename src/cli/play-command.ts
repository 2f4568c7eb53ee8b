import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { ConfigError } from '../shared/config-file.js';
import { SEED_DEFAULT_ROOT, SEED_ROOT } from '../shared/topics.js';
import { parseNativePlaybook } from '../hub/engines/orchestrator/native-playbook.js';
import { parseSeedPlaybook } from '../hub/engines/orchestrator/seed-playbook.js';
import { connectFromFlags, withMqttFlags, type MqttFlags } from './mqtt-flags.js';
import { playNative } from './native-play.js';
import { renderRunReport, renderSeedReport } from './play-summary.js';
import { CommandError, EXIT, parsePositiveNumber, runCommand } from './process-lifecycle.js';
import { SeedPlayer } from './seed-player.js';

type PlayFlags = MqttFlags & { report?: string; outDir?: string; root: string; waitforTimeout: number; receiveTimeout: number; hubTimeout: number; connectTimeout: number };

const isNative = (file: string) => /\.ya?ml$/i.test(file);

function readPlaybook(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read playbook ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Ctrl-C once: stop every running action and report; twice: leave at once. */
function onInterrupt(): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const handler = () => {
    if (controller.signal.aborted) process.exit(EXIT.failure);
    controller.abort();
  };
  process.on('SIGINT', handler);
  return { signal: controller.signal, release: () => process.off('SIGINT', handler) };
}

const progress = (line: string) => process.stdout.write(`${line}\n`);

/** Where RECEIVE writes: --out-dir (made if missing), else the current directory, as the seed did. */
function outDir(flag: string | undefined): string {
  const dir = resolve(flag ?? '.');
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new ConfigError(`--out-dir ${flag}: cannot create it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return dir;
}

export function playCommand(): Command {
  return withMqttFlags(new Command('play'))
    .description('run a playbook across orchestrator nodes: seed (MQTT-Orchestrate) text, or native YAML through the hub')
    .argument('<file>', 'playbook: *.yaml / *.yml is native (scheduled by the hub), anything else seed text')
    .option('--report <file>', 'also write the run report as JSON to this file')
    .option('--root <topic>', 'seed: topic root of the nodes', SEED_DEFAULT_ROOT)
    .option('--waitfor-timeout <seconds>', 'seed: WAITFOR timeout unless the line gives one', parsePositiveNumber, 60)
    .option('--out-dir <dir>', 'seed: directory RECEIVE writes its files into (made if missing; default: the current directory)')
    .option('--receive-timeout <seconds>', 'seed: how long RECEIVE waits for its file', parsePositiveNumber, 60)
    .option('--hub-timeout <seconds>', 'native: how long to wait for the hub to accept the run', parsePositiveNumber, 10)
    .option('--connect-timeout <seconds>', 'how long to wait for the broker', parsePositiveNumber, 10)
    .action((file: string, flags: PlayFlags) =>
      runCommand(async () => {
        const text = readPlaybook(file);
        if (!SEED_ROOT.test(flags.root)) throw new ConfigError(`--root ${flags.root}: use topic levels of letters, digits, ".", "_" or "-", without wildcards`);
        const seed = isNative(file) ? null : parseSeedPlaybook(text);
        const native = isNative(file) ? parseNativePlaybook(text, file) : null;
        const errors = seed?.errors ?? (native && !native.ok ? native.errors : []);
        if (errors.length) throw new ConfigError(`invalid playbook ${file}:\n  ${errors.join('\n  ')}`);
        const receiveDir = seed?.instructions.some((i) => i.verb === 'RECEIVE') ? outDir(flags.outDir) : '';

        const mqtt = await connectFromFlags(flags, flags.connectTimeout);
        const interrupt = onInterrupt();
        try {
          let report: object;
          let ok: boolean;
          if (seed) {
            const player = new SeedPlayer({ mqtt, root: flags.root, waitforTimeoutMs: flags.waitforTimeout * 1000, receiveTimeoutMs: flags.receiveTimeout * 1000, outDir: receiveDir, progress });
            interrupt.signal.addEventListener('abort', () => player.interrupt(), { once: true });
            const r = await player.run(file, seed.instructions);
            progress(`\n${renderSeedReport(r)}`);
            [report, ok] = [r, r.status === 'ok'];
          } else {
            const outcome = await playNative({ mqtt, progress, hubTimeoutMs: flags.hubTimeout * 1000, cancelTimeoutMs: 30_000, signal: interrupt.signal }, file, text);
            if ('error' in outcome) throw new CommandError(outcome.error);
            progress(`\n${renderRunReport(outcome.report)}`);
            [report, ok] = [outcome.report, outcome.report.status === 'ok'];
          }
          if (flags.report) writeFileSync(flags.report, `${JSON.stringify(report, null, 2)}\n`);
          return ok ? EXIT.ok : EXIT.failure;
        } finally {
          interrupt.release();
          await mqtt.endAsync();
        }
      }),
    );
}

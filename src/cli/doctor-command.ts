import { Command } from 'commander';
import type { AgentConfig } from '../../agent/config.js';
import { ConfigError } from '../shared/config-file.js';
import { loadAgentConfig } from './agent-command.js';
import { doctorExit, hubKeyVerdict, renderChecks, systemdVerdict, type Check } from './doctor-checks.js';
import { DEFAULT_HUB_CONFIG, runHubDoctor } from './doctor-hub.js';
import { appChecks, brokerChecks, loadHubKey, systemdState } from './doctor-probes.js';
import { parsePositiveNumber, runCommand } from './process-lifecycle.js';

/** Where systemd/pushfleet-agent.service points the agent. */
export const DEFAULT_AGENT_CONFIG = '/etc/pushfleet/agent.yaml';

type DoctorFlags = { config?: string; unit?: string; hub?: boolean; timeout: number; json?: boolean };

/** Every check, in a fixed order; those that need the config only when it is valid. */
export async function runDoctor(flags: { config: string; unit: string; timeout: number }): Promise<Check[]> {
  const timeoutMs = flags.timeout * 1000;
  const systemd = systemdState(flags.unit, timeoutMs).then((shown) => systemdVerdict(flags.unit, shown));
  let config: AgentConfig;
  try {
    config = loadAgentConfig(flags.config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return [{ check: 'config', verdict: 'FAIL', detail: `${err.message}\nthe checks that need the config were not run` }, await systemd];
  }
  const [broker, apps] = await Promise.all([brokerChecks(config, timeoutMs), Promise.all(config.apps.map((app) => appChecks(app, timeoutMs)))]);
  return [
    { check: 'config', verdict: 'ok', detail: `${flags.config}: agent ${config.id}, ${config.apps.length} app(s)` },
    hubKeyVerdict(config, config.hubPublicKey === undefined ? null : loadHubKey(config.hubPublicKey)),
    ...broker,
    ...apps.flat(),
    await systemd,
  ];
}

export function doctorCommand(): Command {
  return new Command('doctor')
    .description("check this host as its agent sees it: config, broker login, each app's path, remote and ref, the hub's key, the clock, the systemd unit")
    .option('-c, --config <file>', `agent YAML config (default: ${DEFAULT_AGENT_CONFIG}; with --hub ${DEFAULT_HUB_CONFIG})`)
    .option('--hub', "check the hub's host instead: its config and the files it names, state dir, ports (or external broker), unit")
    .option('--unit <name>', 'the systemd unit (default: pushfleet-agent; with --hub pushfleet-hub)')
    .option('--timeout <seconds>', 'longest wait for the broker and for each git remote', parsePositiveNumber, 10)
    .option('--json', 'print the checks as JSON: {ok, checks: [{check, verdict, detail}]}')
    .addHelpText(
      'after',
      [
        '',
        'One line per check: ok, warn (works, but look at it), FAIL (the agent will not work so), or',
        'skip (could not be checked here), then what was checked and what to do.',
        '',
        'Exit status: 0 no check failed (warnings and skips allowed), 1 at least one check failed,',
        '2 bad usage.',
        '',
      ].join('\n'),
    )
    .action((flags: DoctorFlags) =>
      runCommand(async () => {
        const run = flags.hub ? runHubDoctor : runDoctor;
        const checks = await run({ ...flags, config: flags.config ?? (flags.hub ? DEFAULT_HUB_CONFIG : DEFAULT_AGENT_CONFIG), unit: flags.unit ?? (flags.hub ? 'pushfleet-hub' : 'pushfleet-agent') });
        const exit = doctorExit(checks);
        process.stdout.write(flags.json ? `${JSON.stringify({ ok: exit === 0, checks }, null, 2)}\n` : renderChecks(checks));
        return exit;
      }),
    );
}

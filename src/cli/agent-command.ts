import { Command } from 'commander';
import { readConfigFile, validateConfig } from '../shared/config-file.js';
import { createLogger } from '../shared/logger.js';
import { redactUrl } from '../shared/mqtt-url.js';
import { AgentConfig } from '../../agent/config.js';
import { startAgent } from '../../agent/agent.js';
import { startOrUndo } from '../shared/startup.js';
import { runCommand, serve } from './process-lifecycle.js';

export function loadAgentConfig(file: string): AgentConfig {
  return validateConfig(AgentConfig, readConfigFile(file), file);
}

export function agentCommand(): Command {
  return new Command('agent')
    .description("run an agent: keep this machine's apps on the newest push of the branches they follow")
    .requiredOption('-c, --config <file>', 'agent YAML config (see config/agent.example.yaml)')
    .option('--check', 'validate the config and exit (0 valid, 2 invalid)')
    .action((flags: { config: string; check?: boolean }) =>
      runCommand(async () => {
        const config = loadAgentConfig(flags.config);
        if (flags.check) {
          process.stdout.write(`${flags.config}: valid (agent ${config.id}, ${config.apps.length} app(s))\n`);
          return;
        }
        const log = createLogger('agent', config.log.level);
        await serve('agent', log, async (manager) => {
          const url = redactUrl(config.mqtt.url);
          manager.status(`connecting to MQTT broker ${url}`);
          const agent = await startOrUndo(log, (teardown) => startAgent(config, log, teardown));
          const status = () => (agent.mqtt.connected ? `online as ${config.id}, ${config.apps.length} app(s); MQTT ${url}` : `offline: MQTT broker ${url} unreachable; retrying`);
          agent.mqtt.on('connect', () => manager.status(status()));
          agent.mqtt.on('offline', () => manager.status(status()));
          return { status, stop: () => agent.stop() };
        });
      }),
    );
}

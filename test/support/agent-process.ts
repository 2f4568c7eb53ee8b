import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { agentMqttSection } from './broker-users.js';
import { CliProcess } from './cli-process.js';
import type { Cleanup } from './cleanup.js';

export type TestApp = {
  name: string;
  repo: string;
  branch?: string;
  tag?: string;
  path: string;
  remote: string;
  update?: string[][];
  restart: string[];
  health?: Record<string, unknown>;
  rollout?: boolean;
  env?: Record<string, string>;
  stepTimeout?: number;
  fetchTimeout?: number;
  retryDelay?: number;
  retryMaxDelay?: number;
  onInterrupted?: 'redo' | 'rollback';
};

export type AgentProcessOptions = {
  id: string;
  mqttUrl: string;
  /** None is fine when `orchestrator` is set. */
  apps?: TestApp[];
  labels?: Record<string, string>;
  /** The agent config's `orchestrator:` section, as written in YAML. */
  orchestrator?: Record<string, unknown>;
  logLevel?: string;
  /** Extra environment for the agent process. */
  env?: NodeJS.ProcessEnv;
  /** The agent's state dir (its journals); pass the same one to start the agent again as the same machine. Default: a fresh temp dir. */
  stateDir?: string;
};

/** The app `web` of acme/web on main, in a rollout, as host `host` runs it from the fixture's bare repository. */
export function rolloutWebApp(git: { bare: string; workdir(host: string): string }, host: string, steps: Pick<TestApp, 'restart'> & Partial<TestApp>): TestApp {
  return { name: 'web', repo: 'acme/web', branch: 'main', path: git.workdir(host), remote: git.bare, rollout: true, ...steps };
}

/** Writes an agent YAML config and starts `pushfleet agent` on it as a real process. */
export async function startAgentProcess(cleanup: Cleanup, opts: AgentProcessOptions): Promise<CliProcess> {
  const dir = cleanup.tempDir('pushfleet-agent-');
  const file = join(dir, 'agent.yaml');
  const stateDir = opts.stateDir ?? join(dir, 'state');
  const config = { id: opts.id, mqtt: await agentMqttSection(opts.mqttUrl, opts.id, dir), labels: opts.labels ?? {}, heartbeatSeconds: 5, log: { level: opts.logLevel ?? 'debug' }, stateDir, apps: opts.apps ?? [] };
  writeFileSync(file, stringify({ ...config, ...(opts.orchestrator && { orchestrator: opts.orchestrator }) }));
  const agent = new CliProcess(['agent', '--config', file], opts.env);
  cleanup.defer(() => agent.stop('SIGKILL'));
  await agent.waitForLog('agent online', (l) => l.msg === 'agent online');
  return agent;
}

/**
 * A restart command whose effect a test can observe: it appends the deployed SHA (from the
 * environment the agent sets) to `restarts.log` beside the working copy.
 */
export function recordingRestart(logFile: string): string[] {
  return [process.execPath, '-e', `require('fs').appendFileSync(${JSON.stringify(logFile)}, process.env.PUSHFLEET_SHA + '\\n')`];
}

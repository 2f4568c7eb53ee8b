import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { agentMqttSection } from './broker-users.js';
import { CliProcess } from './cli-process.js';
import type { Cleanup } from './cleanup.js';
import { authBrokerAt } from './mosquitto.js';
import { loginAs } from './test-hub.js';
import { hubKeyFor } from './signer.js';

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
  verify?: { mode: 'ssh' | 'gpg'; allowedSigners: string };
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
  /** The hub.pub it trusts. Default: that of the test hub started on `mqttUrl` (signer.ts). */
  hubPublicKey?: string;
  /** The config's acceptUnsigned (default false). */
  acceptUnsigned?: boolean;
  /** The config's `actions:`, `jobs:` and `services:` sections, as written in YAML. */
  actions?: Record<string, unknown>;
  jobs?: Record<string, unknown>;
  services?: Record<string, unknown>;
  /** Rewrites the broker URL the agent connects to (e.g. to a TCP proxy's); its login stays that of `mqttUrl`'s broker. */
  via?: (url: string) => string;
  /** More keys of the config's `mqtt:` section (e.g. a clientId, for a persistent session). */
  mqtt?: Record<string, unknown>;
};

/** The app `web` of acme/web on main, in a rollout, as host `host` runs it from the fixture's bare repository. */
export function rolloutWebApp(git: { bare: string; workdir(host: string): string }, host: string, steps: Pick<TestApp, 'restart'> & Partial<TestApp>): TestApp {
  return { name: 'web', repo: 'acme/web', branch: 'main', path: git.workdir(host), remote: git.bare, rollout: true, ...steps };
}

/** The `mqtt:` section of agent `id` on the test broker at `mqttUrl`: its own account (role agent), a password file in `dir` where the broker is a test hub's. */
export async function agentLogin(mqttUrl: string, id: string, dir: string): Promise<Record<string, unknown>> {
  const broker = authBrokerAt(mqttUrl);
  return broker ? await loginAs(broker, id, 'agent') : await agentMqttSection(mqttUrl, id, dir);
}

/** Writes an agent YAML config and starts `pushfleet agent` on it as a real process. */
export async function startAgentProcess(cleanup: Cleanup, opts: AgentProcessOptions): Promise<CliProcess> {
  const dir = cleanup.tempDir('pushfleet-agent-');
  const file = join(dir, 'agent.yaml');
  const stateDir = opts.stateDir ?? join(dir, 'state');
  const login = await agentLogin(opts.mqttUrl, opts.id, dir);
  const mqtt = { ...login, ...(opts.via && { url: opts.via(login.url as string) }), ...opts.mqtt };
  const hubPublicKey = opts.hubPublicKey ?? hubKeyFor(opts.mqttUrl);
  if (!hubPublicKey && !opts.acceptUnsigned) throw new Error(`no test hub was started on ${opts.mqttUrl}: pass hubPublicKey (or acceptUnsigned)`);
  const signing = { ...(hubPublicKey && { hubPublicKey }), ...(opts.acceptUnsigned && { acceptUnsigned: true }) };
  const config = { id: opts.id, mqtt, ...signing, labels: opts.labels ?? {}, heartbeatSeconds: 5, log: { level: opts.logLevel ?? 'debug' }, stateDir, apps: opts.apps ?? [] };
  writeFileSync(file, stringify({ ...config, ...(opts.orchestrator && { orchestrator: opts.orchestrator }), ...(opts.actions && { actions: opts.actions }), ...(opts.jobs && { jobs: opts.jobs }), ...(opts.services && { services: opts.services }) }));
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

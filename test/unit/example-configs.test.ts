import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AgentConfig } from '../../agent/config.js';
import { OrchestratorNodeConfig } from '../../agent/node/node-config.js';
import { HubConfig } from '../../src/hub/config.js';
import { resolvePolicy } from '../../src/hub/engines/rollouts/policy.js';
import { SemaphoreConfig } from '../../src/hub/engines/semaphore/config.js';
import { validateConfig } from '../../src/shared/config-file.js';

const example = (name: string) => readFileSync(new URL(`../../config/${name}`, import.meta.url), 'utf8');

/**
 * The example's text from the line `start` on, with commented-out YAML switched on: `# key: …`,
 * `#   - …` lose their "# "; prose comments (several words before any colon) stay comments.
 */
function uncommented(text: string, start: RegExp): string {
  const lines = text.split('\n');
  const from = lines.findIndex((l) => start.test(l));
  expect(from, `${start} in the example`).toBeGreaterThanOrEqual(0);
  return lines
    .slice(from)
    .map((l) => l.replace(/^(\s*)# ((?:\s*)(?:[\w"().*+?-]+:(?:\s|$)|- ).*)$/, '$1$2'))
    .join('\n');
}

/** Every YAML example shipped in config/, and the schema its name says it is for. */
const SHIPPED = {
  'hub.example.yaml': HubConfig,
  'rollout-hub.example.yaml': HubConfig,
  'agent.example.yaml': AgentConfig,
  'rollout-agent.example.yaml': AgentConfig,
  'orchestrator-node.example.yaml': AgentConfig,
} as const;

describe('example configs', () => {
  it('every example in config/ is one this test knows, and loads with the real schema', () => {
    const yamlFiles = readdirSync(new URL('../../config/', import.meta.url)).filter((f) => /\.ya?ml$/.test(f));
    expect(yamlFiles.sort()).toEqual(Object.keys(SHIPPED).sort());
    for (const [name, schema] of Object.entries(SHIPPED)) expect(() => validateConfig(schema, parse(example(name)), name), name).not.toThrow();
  });

  it('orchestrator node: the actions the seed playbook sends, as argv, for server and clients', () => {
    const agent = validateConfig(AgentConfig, parse(example('orchestrator-node.example.yaml')), 'orchestrator-node.example.yaml');
    expect(agent.apps).toEqual([]);
    const node = agent.orchestrator!;
    expect(node).toMatchObject({ root: 'testlab', acceptSeedCommands: true });
    // playbook.sample sends START, SENDFILE (and the built-in STOP and TERMINATE) to its nodes.
    const sample = readFileSync(new URL('../fixtures/playbooks/playbook.sample', import.meta.url), 'utf8');
    const sent = new Set([...sample.matchAll(/^SEND \S+ (\S+)/gm)].map((m) => m[1]!).filter((w) => !['STOP', 'TERMINATE'].includes(w)));
    expect(Object.keys(node.actions).sort()).toEqual([...sent].sort());
    expect(node.actions.START).toMatchObject({ command: ['/usr/bin/iperf3', '-s', '--logfile', '/var/lib/pushfleet-agent/iperf-server.log', '-p'], args: 'append', maxArgs: 1 });
    const client = parse(uncommented(example('orchestrator-node.example.yaml'), /^ {4}# START:/).replace(/^ {4}/gm, '')) as { START: unknown };
    expect(validateConfig(AgentConfig.shape.orchestrator, { actions: client }, 'orchestrator')!.actions.START).toMatchObject({ args: 'append', maxArgs: 3 });
  });

  it('rollout environment: staging all at once, production canary then two at a time, and the agent waits for it', () => {
    const hub = validateConfig(HubConfig, parse(example('rollout-hub.example.yaml')), 'rollout-hub.example.yaml');
    expect(hub.engines.semaphore.enabled).toBe(true);
    const rollouts = hub.engines.rollouts;
    expect(resolvePolicy(rollouts, 'web', 'staging', 8)).toMatchObject({ canary: 0, batchSize: 8, failureThreshold: 8, onAbort: 'stop' });
    expect(resolvePolicy(rollouts, 'web', 'production', 20)).toMatchObject({ canary: 1, batchSize: 2, maxUnavailable: 2, hostTimeout: 600, failureThreshold: 2, onAbort: 'rollback' });
    expect(resolvePolicy(rollouts, 'worker-eu', 'production', 20)).toMatchObject({ hostTimeout: 1800, onAbort: 'rollback' });
    const agent = validateConfig(AgentConfig, parse(example('rollout-agent.example.yaml')), 'rollout-agent.example.yaml');
    expect(agent.labels.env).toBe('production');
    expect(agent.apps.map((a) => a.rollout)).toEqual([true]);
  });

  it('hub: the engines section loads with the defaults it shows', () => {
    const hub = validateConfig(HubConfig, parse(example('hub.example.yaml')), 'hub.example.yaml');
    expect(hub.engines.semaphore).toEqual(SemaphoreConfig.parse({}));
    expect(hub.engines.orchestrator).toEqual({ enabled: true, startMargin: 0.25, cancelGrace: 10, maxAgents: 10_000, maxRuns: 100 });
    expect(hub.engines.rollouts.policies[0]).toMatchObject({ env: 'production', batchSize: 2, failureThreshold: '10%', onAbort: 'rollback' });
  });

  it('hub: the commented-out GitHub reporting is valid', () => {
    const raw = parse(uncommented(example('hub.example.yaml'), /^engines:/)) as { engines: unknown };
    expect(validateConfig(HubConfig, { engines: raw.engines }, 'hub.example.yaml').engines.rollouts.github).toEqual({ apiUrl: 'https://api.github.com', token: 'ghp_example' });
  });

  it('hub: the commented-out semaphore quotas and channels are valid', () => {
    const raw = parse(uncommented(example('hub.example.yaml'), /^engines:/)) as { engines: { semaphore: unknown } };
    const sem = validateConfig(SemaphoreConfig, raw.engines.semaphore, 'engines.semaphore');
    expect(Object.keys(sem.quotasPerInterval)).toEqual(['60', '3600']);
    expect(Object.keys(sem.channels)).toEqual(['backup-.*']);
  });

  it('agent: the apps load with the retry, timeout and interruption keys it shows', () => {
    const agent = validateConfig(AgentConfig, parse(example('agent.example.yaml')), 'agent.example.yaml');
    expect(agent.apps[0]).toMatchObject({ stepTimeout: 600, fetchTimeout: 120, retryDelay: 5, retryMaxDelay: 300, onInterrupted: 'redo' });
    expect(agent.apps[1]).toMatchObject({ fetchTimeout: 120, retryDelay: 5, retryMaxDelay: 300, onInterrupted: 'redo' });
    const raw = parse(uncommented(example('agent.example.yaml'), /^# stateDir:/)) as { stateDir: unknown };
    expect(raw.stateDir).toBe('/var/lib/pushfleet-agent');
  });

  it('agent: the commented-out orchestrator section is valid', () => {
    const raw = parse(uncommented(example('agent.example.yaml'), /^# orchestrator:/)) as { orchestrator: unknown };
    const node = validateConfig(OrchestratorNodeConfig, raw.orchestrator, 'orchestrator');
    expect(Object.keys(node.actions)).toEqual(['SERVE', 'CLIENT']);
    expect(node).toMatchObject({ root: 'testlab', queueSize: 4, stopGrace: 5, clock: { samples: 8, resyncSeconds: 60 } });
    expect(node.actions.CLIENT!.command).toEqual(['/usr/bin/iperf3', '-t', '10', '-c']);
  });

  it('agent: the commented-out actions and jobs sections are valid', () => {
    const raw = parse(uncommented(example('agent.example.yaml'), /^# actions:/)) as { actions: unknown; jobs: unknown };
    const agent = validateConfig(AgentConfig, { mqtt: { url: 'mqtt://hub' }, acceptUnsigned: true, actions: raw.actions, jobs: raw.jobs }, 'agent.example.yaml');
    expect(agent.actions.transcode).toEqual({ command: ['/usr/local/bin/transcode'], cwd: '/srv/media', timeoutSeconds: 3600, stopTimeout: 10, env: { PRESET: 'slow' } });
    expect(agent.jobs).toEqual({ actions: ['transcode'], maxConcurrent: 1 });
  });

  it('agent: the commented-out services section is valid', () => {
    const raw = parse(uncommented(example('agent.example.yaml'), /^# actions:/)) as { actions: unknown; services: unknown };
    const agent = validateConfig(AgentConfig, { mqtt: { url: 'mqtt://hub' }, acceptUnsigned: true, actions: raw.actions, services: raw.services }, 'agent.example.yaml');
    expect(agent.actions['queue-worker']).toMatchObject({ command: ['/usr/local/bin/queue-worker', '--queue'], lastArgument: true, watchdogSec: 30 });
    expect(agent.services).toEqual({ actions: ['queue-worker'], maxWorkers: 4, stopTimeout: 1 });
  });
});

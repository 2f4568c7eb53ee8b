/**
 * `orchestrator`: how close together N agents start one step, over 100 rounds for N = 10 (the
 * issue's figure) and 300 for N = 2 (the seed's own measurement: 2 nodes on loopback; 300 for a
 * p99 from more than 2 samples). The hub runs as a child process on its embedded aedes broker (as `pushfleet hub` would); the nodes are real
 * `pushfleet agent` processes on this machine whose action is `date +%s%N`: the action's own
 * first output is its start time, which reaches the bench in the node's report (outputTail).
 *
 * - observed: what the actions see. Skew = max − min of the actions' own timestamps per step, and
 *   action start − T on each agent's own clock: the time from the gate opening to the action's
 *   code running (an exec, the dynamic loader, date's start-up), which the hub's figures leave out.
 *
 * - native: one playbook of that many steps, each on all N agents, one after the other; every step
 *   is "start at T" with T = now + MARGIN. Skew = max − min of the agents' actual start times (hub
 *   clock, i.e. each agent's own clock corrected by its measured offset): when each gate went,
 *   released by itself where the host has bash ≥ 5 (agent/node/timed-gate.ts), else by its agent.
 * - seed mode: the seed's way, for comparison: N SEND TICK published back to back, each node
 *   starting as soon as its command arrives. Command-to-start = a node's start time − the moment
 *   its SEND was published; both on their own clocks, which on one machine are the same clock.
 *
 * All agents share this machine's cores: with more agents than cores, the figures measure the
 * scheduler as much as the orchestrator (one agent per machine has no such contention).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { playNative } from '../../src/cli/native-play.js';
import { preciseNow } from '../../src/hub/engines/orchestrator/precise-time.js';
import { decode } from '../../src/shared/messages.js';
import { NodeResult, type RunReport } from '../../src/shared/contract/orchestrator-messages.js';
import { connectMqtt } from '../../src/shared/mqtt-connection.js';
import { SEED_DEFAULT_ROOT, seedCommandTopic, seedResultTopic } from '../../src/shared/topics.js';
import { Cleanup } from '../../test/support/cleanup.js';
import { waitForClocks } from '../../test/support/orchestrator-fleet.js';
import { BenchProcess, progress, startHubProcess } from '../support/processes.js';
import { percentile, round, type Figures, type Scenario } from '../scenario.js';

/** Long enough for every agent to receive the command and fork its gated action before T. */
const MARGIN_S = 0.2;
const agentIds = (n: number) => Array.from({ length: n }, (_, i) => `bench-${String(i + 1).padStart(2, '0')}`);

const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);
const stats = (name: string, samples: number[]): Figures => ({
  [`${name} p50 (ms)`]: round(percentile(samples, 50), 3),
  [`${name} p90 (ms)`]: round(percentile(samples, 90), 3),
  [`${name} p99 (ms)`]: round(percentile(samples, 99), 3),
  [`${name} max (ms)`]: round(Math.max(...samples), 3),
});

async function startAgents(cleanup: Cleanup, hub: { mqttUrl: string; hubPublicKey: string }, ids: readonly string[]): Promise<void> {
  const { mqttUrl, hubPublicKey } = hub;
  const dir = mkdtempSync(join(tmpdir(), 'pushfleet-bench-agents-'));
  cleanup.defer(() => rmSync(dir, { recursive: true, force: true }));
  for (const id of ids) {
    const file = join(dir, `${id}.yaml`);
    // Seed mode sends the seed's plain-word commands, which carry no signature.
    // A state dir each: one agent per state dir (its lock).
    const config = { id, mqtt: { url: mqttUrl }, hubPublicKey, stateDir: join(dir, `${id}-state`), labels: { bench: 'skew' }, log: { level: 'warn' }, orchestrator: { acceptSeedCommands: true, actions: { TICK: { command: ['date', '+%s%N'] } } } };
    writeFileSync(file, stringify(config));
    const agent = new BenchProcess(['agent', '--config', file]);
    cleanup.defer(() => agent.stop());
  }
  await waitForClocks(cleanup, mqttUrl, ids);
  // Agents measure their clock a few times in their first seconds (the first is taken while all
  // of them are still starting): give them that time, as a fleet that has been up would have had.
  progress('letting the agents refine their clock offsets (12 s)');
  await sleep(12_000);
}

/** `rounds` steps on every agent, each waiting for the one before through a barrier. */
function roundsPlaybook(rounds: number): string {
  const steps = Array.from({ length: rounds }, (_, i) => [{ id: `r${i + 1}`, targets: { bench: 'skew' }, action: 'TICK' }, { barrier: `after-r${i + 1}` }]).flat();
  return stringify({ name: 'skew', startMargin: MARGIN_S, steps });
}

async function native(client: MqttClient, rounds: number): Promise<Figures> {
  const outcome = await playNative({ mqtt: client, progress: () => undefined, hubTimeoutMs: 10_000, cancelTimeoutMs: 10_000, signal: new AbortController().signal }, 'skew.yaml', roundsPlaybook(rounds));
  if ('error' in outcome) throw new Error(outcome.error);
  const report: RunReport = outcome.report;
  if (report.status !== 'ok') throw new Error(`bench run ${report.status}: ${JSON.stringify(report.steps.find((s) => s.status !== 'ok'))}`);
  const steps = report.steps.filter((s) => s.kind === 'action');
  const nodes = steps.flatMap((s) => s.nodes);
  const observed = (n: (typeof nodes)[number]) => {
    const ns = /^(\d{19})\s*$/.exec(n.outputTail);
    if (!ns) throw new Error(`${n.node}: the action printed ${JSON.stringify(n.outputTail.slice(0, 80))}, not date +%s%N`);
    return Number(BigInt(ns[1]!) / 1000n) / 1000; // ms since the epoch, µs resolution
  };
  return {
    ...stats('observed start skew (actions\' own clocks)', steps.map((s) => spread(s.nodes.map(observed)))),
    // T on the agent's own clock = its start time there minus how late the gate opened.
    ...stats('observed action start − T', nodes.map((n) => observed(n) - (n.startedAt! - n.clockOffsetMs! - n.lateByMs!))),
    ...stats('native start skew', steps.map((s) => s.skewMs!)),
    // Every agent shares this machine's clock: its own start times show the skew without offset errors.
    ...stats('native start skew, own clocks', steps.map((s) => spread(s.nodes.map((n) => n.startedAt! - n.clockOffsetMs!)))),
    ...stats('native start − T', nodes.map((n) => n.lateByMs!)),
    ...stats('native command lead before T', nodes.map((n) => n.leadMs!)),
    'native clock error estimate max (ms)': round(Math.max(...nodes.map((n) => n.clockErrorMs ?? NaN)), 3),
    'native command-to-start = margin (ms)': MARGIN_S * 1000,
  };
}

async function seed(client: MqttClient, ids: readonly string[], rounds: number): Promise<Figures> {
  const started = new Map<string, number>();
  const finished = new Set<string>();
  let roundDone: () => void = () => undefined;
  client.on('message', (_topic, payload) => {
    const r = decode(NodeResult, payload);
    if (!r.ok) return;
    if (r.value.phase === 'started') started.set(r.value.node, r.value.startedAt! - (r.value.clockOffsetMs ?? 0));
    else if (finished.add(r.value.node).size === ids.length) roundDone();
  });
  await client.subscribeAsync(seedResultTopic(SEED_DEFAULT_ROOT, '+'), { qos: 1 });
  const skews: number[] = [];
  const latencies: number[] = [];
  for (let i = 0; i < rounds; i++) {
    started.clear();
    finished.clear();
    const done = new Promise<void>((resolve) => (roundDone = resolve));
    const sentAt = new Map<string, number>();
    for (const id of ids) {
      sentAt.set(id, preciseNow());
      client.publish(seedCommandTopic(SEED_DEFAULT_ROOT, id), 'TICK', { qos: 1 });
    }
    await done;
    const starts = ids.map((id) => started.get(id)!);
    skews.push(spread(starts));
    latencies.push(...ids.map((id) => started.get(id)! - sentAt.get(id)!));
  }
  return { ...stats('seed-mode start skew', skews), ...stats('seed-mode command-to-start', latencies) };
}

const scenario = (agents: number, rounds: number): Scenario => ({
  name: `orchestrator: start skew, ${agents} agents × ${rounds} rounds`,
  async run() {
    const cleanup = new Cleanup();
    try {
      const ids = agentIds(agents);
      const hub = await startHubProcess(cleanup);
      progress(`starting ${agents} agents`);
      await startAgents(cleanup, hub, ids);
      const client = await connectMqtt({ url: hub.mqttUrl, keepalive: 30 });
      cleanup.defer(() => client.endAsync());
      progress(`native: ${rounds} rounds, start at T = now + ${MARGIN_S * 1000} ms`);
      const nativeFigures = await native(client, rounds);
      progress(`seed mode: ${rounds} rounds of ${agents} SENDs`);
      return { ...nativeFigures, ...(await seed(client, ids, rounds)) };
    } finally {
      await cleanup.run();
    }
  },
});

// 2 agents: the target is a p99 of the observed skew, which 300 rounds resolve (100 give it from 2 samples).
export const orchestratorScenarios: Scenario[] = [scenario(10, 100), scenario(2, 300)];

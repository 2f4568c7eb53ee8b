/**
 * `fleet`: N simulated agents (bench/fleet/: each its own broker account, last will, retained
 * status and app state, a heartbeat every 30 s, subscribed to its directives and the retained
 * heads as agent/agent.ts is) on one hub process, on its embedded aedes broker and on mosquitto.
 * Figures per level: the time until all N are connected and announced; a signed push until the
 * last agent has its head, that push's own webhook answer, and the CPU the hub and the simulator
 * spent until then (the simulator shares the machine's cores with the hub); webhook answers while
 * the N are connected (pushes to a repo no agent follows, one at a time), right after the push
 * while the hub takes the fleet's reports of it, and again once the hub is quiet; the hub's RSS;
 * and a hub kill -9 and start on the same state dir, with a push as soon as it answers, until
 * every agent is online again (embedded broker: they all reconnect, with the clients' reconnect
 * jitter) and runs that push's head.
 *
 * `npm run bench fleet -- --agents 1000[,3000] [--broker aedes|mosquitto] [--workers 4] [--step-ms 0]`;
 * without --agents the levels are 100, 1,000, 3,000 and 10,000. `--step-ms`: how long each agent
 * takes to "update" before it reports the new SHA deployed (default 0: it reports at once, so
 * the fleet's reports compete with the push's own delivery, as "updating" reports do).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultUsersFile } from '../../src/hub/users/users-file.js';
import { addFleetAccounts, Fleet, fleetIds, wallNow } from '../fleet/fleet.js';
import { SIM_REPO } from '../fleet/sim-agent.js';
import { withoutCredentials } from '../../test/support/broker-users.js';
import { Cleanup } from '../../test/support/cleanup.js';
import { startMosquitto, STAY } from '../../test/support/mosquitto.js';
import { githubPushPayload, postWebhook, signedRequest } from '../../test/support/push-payload.js';
import { RestartableHub } from '../../test/support/restartable-hub.js';
import { SECRET } from '../../test/support/test-hub.js';
import { cpuSeconds, mb, progress, rssBytes } from '../support/processes.js';
import { percentile, round, type Figures, type Scenario } from '../scenario.js';

const DEFAULT_LEVELS = [100, 1_000, 3_000, 10_000];
const BROKERS = ['aedes', 'mosquitto'] as const;
type Broker = (typeof BROKERS)[number];
const WEBHOOK_SAMPLES = 200;

type Options = { levels: number[]; brokers: Broker[]; workers: number | undefined; stepMs: number };

const flagValue = (args: readonly string[], flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};

/** `--agents 1000[,10000]`: the fleet sizes a scenario runs at, `defaults` without the flag. */
export function agentLevels(args: readonly string[], defaults: readonly number[]): number[] {
  const agents = flagValue(args, '--agents');
  const levels = agents ? agents.split(',').map(Number) : [...defaults];
  if (levels.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--agents takes agent counts, e.g. 1000 or 100,1000 (not "${agents}")`);
  return levels;
}

export function fleetOptions(args: readonly string[]): Options {
  const value = (flag: string) => flagValue(args, flag);
  const levels = agentLevels(args, DEFAULT_LEVELS);
  const broker = value('--broker');
  if (broker !== undefined && !BROKERS.includes(broker as Broker)) throw new Error(`--broker is aedes or mosquitto (not "${broker}")`);
  const workers = value('--workers');
  const stepMs = Number(value('--step-ms') ?? 0);
  if (!Number.isFinite(stepMs) || stepMs < 0) throw new Error(`--step-ms takes milliseconds (not "${value('--step-ms')}")`);
  return { levels, brokers: broker ? [broker as Broker] : [...BROKERS], workers: workers === undefined ? undefined : Number(workers), stepMs };
}

const seconds = (ms: number) => round(ms / 1000, 2);

const fleetCpuSeconds = (fleet: Fleet): number => fleet.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);

/**
 * Waits until the hub has taken what the push set off (every agent's report of it): its CPU
 * under 20 % over 250 ms, at most 60 s. Resolves with the wait in ms.
 */
async function untilQuiet(pid: number): Promise<number> {
  const start = wallNow();
  for (let last = cpuSeconds(pid); wallNow() - start < 60_000; ) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = cpuSeconds(pid);
    if (now - last < 0.05) break;
    last = now;
  }
  return wallNow() - start;
}

async function push(webhookUrl: string, repo: string, sha: string): Promise<number> {
  const req = signedRequest(SECRET, 'push', githubPushPayload({ repo, after: sha }));
  const t = performance.now();
  const res = await postWebhook(webhookUrl, req);
  if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${JSON.stringify(res.body)}`);
  return performance.now() - t;
}

/** mosquitto as a fleet's broker: anyone may connect (its accounts are mosquitto's cost, not the hub's), retained messages kept on disk. */
async function mosquittoForFleet(cleanup: Cleanup): Promise<string> {
  const broker = await startMosquitto({ config: ({ port, dir }) => `listener ${port} 127.0.0.1\n${STAY}\nallow_anonymous true\nset_tcp_nodelay true\nmax_queued_messages 10000\npersistence true\npersistence_location ${dir}/\nlog_dest stderr\nlog_type error\n` });
  cleanup.defer(() => broker.stop());
  return broker.url;
}

async function measure(n: number, broker: Broker, { workers, stepMs }: Options): Promise<Figures> {
  const cleanup = new Cleanup();
  try {
    const hub = await RestartableHub.create(cleanup, broker === 'mosquitto' ? await mosquittoForFleet(cleanup) : undefined);
    const accounts = addFleetAccounts(defaultUsersFile(hub.stateDir), fleetIds(n));
    await hub.start();
    const url = withoutCredentials(hub.mqttUrl);

    progress(`${broker}, ${n} agents: connecting`);
    const t0 = wallNow();
    const fleet = await Fleet.start({ url, accounts, stepMs, ...(workers && { workers }) });
    cleanup.defer(() => fleet.stop());
    const connected = await fleet.until(t0, null, (r) => r.onlineSince === n, 600_000, 'all connected');

    progress(`${broker}, ${n} agents: a push`);
    const hubPid = hub.proc!.pid;
    const cpuBefore = { hub: cpuSeconds(hubPid), fleet: fleetCpuSeconds(fleet) };
    const sha = randomBytes(20).toString('hex');
    const pushedAt = wallNow();
    const pushAnswer = await push(hub.webhookUrl, SIM_REPO, sha);
    const reached = await fleet.until(pushedAt, sha, (r) => r.atSha === n, 120_000, 'the push at every agent');
    const pushCpu = { hub: cpuSeconds(hubPid) - cpuBefore.hub, fleet: fleetCpuSeconds(fleet) - cpuBefore.fleet };

    progress(`${broker}, ${n} agents: ${WEBHOOK_SAMPLES} webhooks for a repo no agent follows, at once and once the hub is quiet`);
    const webhooks = async () => {
      const answers: number[] = [];
      for (let i = 0; i < WEBHOOK_SAMPLES; i++) answers.push(await push(hub.webhookUrl, 'acme/unfollowed', randomBytes(20).toString('hex')));
      return answers;
    };
    // At once: while the hub still takes the fleet's reports of the push (each agent's app state).
    const answers = await webhooks();
    const quietAfter = await untilQuiet(hubPid);
    const quietAnswers = await webhooks();
    const rss = rssBytes(hubPid);

    progress(`${broker}, ${n} agents: hub kill -9 and start`);
    await hub.kill();
    const killedAt = wallNow();
    await hub.start();
    const readyAt = wallNow();
    const next = randomBytes(20).toString('hex');
    await push(hub.webhookUrl, SIM_REPO, next);
    // On mosquitto the agents stay connected through a hub restart; only the push must reach them.
    const reconnects = broker === 'aedes';
    const back = await fleet.until(killedAt, next, (r) => r.atSha === n && (!reconnects || r.onlineSince === n), 600_000, 'the fleet back after the restart');
    if (back.errorCount > 0) progress(`${broker}, ${n} agents: ${back.errorCount} agent errors: ${JSON.stringify(back.errorKinds)}`);
    const figures: Figures = {
      'all connected (s)': seconds(connected.lastOnline - t0),
      'push → last agent has it (ms)': round(reached.lastHead - pushedAt, 1),
      "that push's webhook answer (ms)": round(pushAnswer, 1),
      'push: hub CPU until every agent has it (ms)': Math.round(pushCpu.hub * 1000),
      'push: simulator CPU until then (ms)': Math.round(pushCpu.fleet * 1000),
      'webhook answer p50, right after the push (ms)': round(percentile(answers, 50), 1),
      'webhook answer p99, right after the push (ms)': round(percentile(answers, 99), 1),
      'hub quiet after the push (s)': seconds(quietAfter),
      'webhook answer p50, hub quiet (ms)': round(percentile(quietAnswers, 50), 1),
      'webhook answer p99, hub quiet (ms)': round(percentile(quietAnswers, 99), 1),
      'hub RSS, N connected (MB)': mb(rss),
      'hub restart: ready (s)': seconds(readyAt - killedAt),
      ...(reconnects && { 'hub restart: all online again (s)': seconds(back.lastOnline - killedAt) }),
      'hub restart: all on the new head (s)': seconds(back.lastHead - killedAt),
      'hub RSS after the restart (MB)': mb(rssBytes(hub.proc!.pid)),
      'agent errors (reconnects included)': back.errorCount,
    };
    return figures;
  } finally {
    await cleanup.run();
  }
}

export const fleetScenarios: Scenario[] = [
  {
    name: 'fleet',
    async run(args = []) {
      const opts = fleetOptions(args);
      const figures: Figures = {};
      for (const n of opts.levels) {
        for (const broker of opts.brokers) {
          for (const [key, value] of Object.entries(await measure(n, broker, opts))) figures[`${broker} ${n}: ${key}`] = value;
        }
      }
      return figures;
    },
  },
];

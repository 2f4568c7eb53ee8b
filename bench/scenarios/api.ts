/**
 * `api`: the REST API's reads with N simulated agents (bench/fleet/) on one hub process (embedded
 * aedes): once all N are connected and on a pushed head, the time of GET /api/v1/agents (one
 * page of 50, one of 1000, and every page), /apps and /agents/{id}, each sampled one at a time
 * with a viewer's token, and the hub's RSS with them.
 *
 * `npm run bench api -- --agents 1000[,10000]`; without --agents the levels are 1,000 and 10,000.
 */
import { randomBytes } from 'node:crypto';
import { defaultUsersFile } from '../../src/hub/users/users-file.js';
import { addFleetAccounts, Fleet, fleetIds, wallNow } from '../fleet/fleet.js';
import { SIM_REPO } from '../fleet/sim-agent.js';
import { addBrokerUser, withoutCredentials } from '../../test/support/broker-users.js';
import { Cleanup } from '../../test/support/cleanup.js';
import { githubPushPayload, postWebhook, signedRequest } from '../../test/support/push-payload.js';
import { RestartableHub } from '../../test/support/restartable-hub.js';
import { SECRET } from '../../test/support/test-hub.js';
import { mb, progress, rssBytes } from '../support/processes.js';
import { percentile, round, type Figures, type Scenario } from '../scenario.js';
import { agentLevels } from './fleet.js';

const DEFAULT_LEVELS = [1_000, 10_000];
const SAMPLES = 30;

/** Times `path` SAMPLES times, one request at a time; checks each answer is a 200 with `ok`. */
async function sample(base: string, token: string, path: string, ok: (body: any) => boolean): Promise<{ p50: number; p99: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < SAMPLES; i++) {
    const t = performance.now();
    const res = await fetch(`${base}/api/v1${path}`, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    times.push(performance.now() - t);
    if (res.status !== 200 || !ok(JSON.parse(text))) throw new Error(`GET ${path} answered ${res.status}: ${text.slice(0, 300)}`);
    bytes = Buffer.byteLength(text);
  }
  return { p50: round(percentile(times, 50), 1), p99: round(percentile(times, 99), 1), bytes };
}

/** The API's view fills as the agents' retained state reaches the hub: waits until it shows all N on the pushed head. */
async function untilShown(base: string, token: string, n: number, sha: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const res = await fetch(`${base}/api/v1/apps`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { items: { head: string | null; onHead: number }[] };
    if (body.items[0]?.head === sha && body.items[0].onHead === n) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the API never showed ${n} agents on ${sha}`);
}

async function measure(n: number): Promise<Figures> {
  const cleanup = new Cleanup();
  try {
    const hub = await RestartableHub.create(cleanup);
    const usersFile = defaultUsersFile(hub.stateDir);
    const accounts = addFleetAccounts(usersFile, fleetIds(n));
    const token = `bench-viewer:${await addBrokerUser(usersFile, 'bench-viewer', 'viewer')}`;
    await hub.start();
    const base = new URL(hub.webhookUrl).origin;
    progress(`api, ${n} agents: connecting`);
    const t0 = wallNow();
    const fleet = await Fleet.start({ url: withoutCredentials(hub.mqttUrl), accounts });
    cleanup.defer(() => fleet.stop());
    await fleet.until(t0, null, (r) => r.onlineSince === n, 600_000, 'all connected');
    const sha = randomBytes(20).toString('hex');
    const pushedAt = wallNow();
    const res = await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ repo: SIM_REPO, after: sha })));
    if (res.status !== 200) throw new Error(`webhook answered ${res.status}`);
    await fleet.until(pushedAt, sha, (r) => r.atSha === n, 120_000, 'the push at every agent');

    progress(`api, ${n} agents: sampling`);
    const figures: Figures = {};
    const record = (name: string, s: { p50: number; p99: number; bytes: number }) => {
      figures[`${name} p50 / p99 (ms)`] = `${s.p50} / ${s.p99}`;
      figures[`${name} answer (KB)`] = round(s.bytes / 1024, 1);
    };
    await untilShown(base, token, n, sha);
    record('GET /agents (50)', await sample(base, token, '/agents', (b) => b.items.length === Math.min(50, n)));
    record('GET /agents?limit=1000', await sample(base, token, '/agents?limit=1000', (b) => b.items.length === Math.min(1000, n)));
    record('GET /agents?online=true&limit=1', await sample(base, token, '/agents?online=true&limit=1', (b) => b.total === n));
    record('GET /agents/{id}', await sample(base, token, `/agents/${fleetIds(1)[0]}`, (b) => b.apps.length > 0));
    record('GET /apps', await sample(base, token, '/apps', (b) => b.items[0]?.onHead === n));
    figures['hub RSS with the API warm (MB)'] = mb(rssBytes(hub.proc!.pid));
    return figures;
  } finally {
    await cleanup.run();
  }
}

export const apiScenarios: Scenario[] = [
  {
    name: 'api',
    async run(args = []) {
      const levels = agentLevels(args, DEFAULT_LEVELS);
      const figures: Figures = {};
      for (const n of levels) for (const [key, value] of Object.entries(await measure(n))) figures[`${n} agents: ${key}`] = value;
      return figures;
    },
  },
];

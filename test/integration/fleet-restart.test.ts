/**
 * A few hundred simulated agents (the fleet simulator, bench/fleet/: each its own account, last
 * will, retained status and state, subscribed to its directives and heads) on a real hub process
 * with its embedded broker. The hub is killed (-9) and started again on its state dir; a push is
 * answered as soon as it is back, while the fleet is still reconnecting. Meanwhile one more
 * agent, on the same address as the fleet, keeps trying a stale password (a fleet behind one
 * NAT). Every agent must come back online and run the newest head, and the broker must retain
 * each one's status as online.
 */
import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { decode, AgentStatus } from '../../src/shared/messages.js';
import { AGENT_STATUS_ALL } from '../../src/shared/topics.js';
import { defaultUsersFile } from '../../src/hub/users/users-file.js';
import { addFleetAccounts, Fleet, fleetIds, wallNow } from '../../bench/fleet/fleet.js';
import { SIM_REPO } from '../../bench/fleet/sim-agent.js';
import { withCredentials, withoutCredentials } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { RestartableHub } from '../support/restartable-hub.js';
import { SECRET } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const AGENTS = 300;

describe('a fleet across a hub kill -9', () => {
  it('brings every agent back online, on the head pushed while it reconnected', async () => {
    const hub = await RestartableHub.create(cleanup);
    const accounts = addFleetAccounts(defaultUsersFile(hub.stateDir), fleetIds(AGENTS));
    const late = addFleetAccounts(defaultUsersFile(hub.stateDir), ['stale-agent', 'late-agent']).get('late-agent')!;
    await hub.start();
    const stale = setInterval(() => void mqtt.connectAsync(withCredentials(hub.mqttUrl, 'stale-agent', 'not-its-password'), { reconnectPeriod: 0, connectTimeout: 20_000 }).then((c) => c.endAsync(true), () => undefined), 250);
    cleanup.defer(() => clearInterval(stale));
    const push = async (sha: string) => expect((await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ repo: SIM_REPO, after: sha })))).status).toBe(200);

    const fleet = await Fleet.start({ url: withoutCredentials(hub.mqttUrl), accounts, workers: 2 });
    cleanup.defer(() => fleet.stop());
    const first = randomBytes(20).toString('hex');
    const t0 = wallNow();
    await push(first);
    await fleet.until(t0, first, (r) => r.atSha === AGENTS, 30_000, 'every agent on the first push');

    await hub.kill();
    const killedAt = wallNow();
    await hub.start();
    const second = randomBytes(20).toString('hex');
    await push(second);
    const back = await fleet.until(killedAt, second, (r) => r.onlineSince === AGENTS && r.atSha === AGENTS, 40_000, 'every agent back and on the second push');
    expect(back.started).toBe(AGENTS);

    // What the hub's broker now retains for each agent: online, announced after the restart.
    const watcher = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => watcher.endAsync(true));
    const statuses = new Map<string, AgentStatus>();
    watcher.on('message', (_topic, payload) => {
      const s = decode(AgentStatus, payload);
      if (s.ok) statuses.set(s.value.agent, s.value);
    });
    await watcher.subscribeAsync(AGENT_STATUS_ALL, { qos: 1 });
    await waitFor(() => `${statuses.size} of ${AGENTS} statuses retained`, () => statuses.size === AGENTS, 10_000);
    const notOnline = [...statuses.values()].filter((s) => s.state !== 'online' || Date.parse(s.at) < killedAt - 1);
    expect(notOnline.map((s) => `${s.agent} ${s.state} ${s.at}`)).toEqual([]);

    // An agent that joins once the stale one has failed for seconds (and nobody else logged in)
    // logs in at once, not after the stale one's doubling wait, which would outlast its connect timeout.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    const joined = await mqtt.connectAsync(withCredentials(hub.mqttUrl, 'late-agent', late), { reconnectPeriod: 0, connectTimeout: 4000 });
    await joined.endAsync(true);
  }, 120_000);
});

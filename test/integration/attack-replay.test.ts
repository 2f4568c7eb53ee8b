import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOperatorCredentials } from '../../src/hub/users/operator-credential.js';
import { decode, SCHEMA_VERSION, ZERO_SHA, type PushMessage } from '../../src/shared/messages.js';
import { RolloutSettings, RolloutSnapshot } from '../../src/shared/contract/rollout-messages.js';
import { SignedRefusal } from '../../src/shared/signing/refusal.js';
import {
  agentPinTopic, agentRefusedTopic, agentRollbackTopic, agentStatusTopic, appStateTopic, headTopic, nodeCommandTopic, ROLLOUT_CONTROL, ROLLOUT_SETTINGS, ROLLOUT_STATE_ALL,
  rolloutChannel, rolloutId, rolloutReplyTopic, SEED_DEFAULT_ROOT, seedCommandTopic,
} from '../../src/shared/topics.js';
import { recordingRestart, rolloutWebApp, startAgentProcess } from '../support/agent-process.js';
import { linesOf } from '../support/app-fixture.js';
import { existingUserUrl, userUrl, withCredentials, withoutCredentials } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';
import { coordinosaurClient, uids } from '../support/coordinosaur-client.js';
import { GitFixture } from '../support/git-fixture.js';
import { storedHeads } from '../support/hub-tables.js';
import { attempt, flood, type Outcome } from '../support/mqtt-attempt.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { SECRET, startTestHub, watch, type TestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

/**
 * Issue 10's attacks replayed end to end: a hub with auth and signing on (the defaults), three
 * real agent processes in a rollout environment (canary 1, batches of 1), web-1 also an
 * orchestrator node whose action leaves a marker file. Each attacker is a real MQTT client with
 * a stolen credential; after each round nothing has moved, and a genuine push still deploys.
 */
const HOSTS = ['web-1', 'web-2', 'web-3'];
const ENV = 'production';
const MAIN = headTopic('acme/web', 'refs/heads/main');
const FLOOD = 5000;

/** Restart: marks the host busy for a while (longer with hold.txt) and logs how many hosts were busy then (overlap), after recording the SHA. */
const overlapRestart = (restartLog: string): string[] => [
  process.execPath,
  '-e',
  `const fs = require('fs'), path = require('path');
   const me = path.join(process.env.BUSY_DIR, process.env.PUSHFLEET_AGENT);
   fs.writeFileSync(me, '');
   fs.appendFileSync(process.env.OVERLAP_LOG, fs.readdirSync(process.env.BUSY_DIR).length + '\\n');
   // A commit may ask for a longer restart (hold.txt), so an attack can land while it runs.
   setTimeout(() => fs.rmSync(me), fs.existsSync('hold.txt') ? Number(fs.readFileSync('hold.txt', 'utf8')) : 300);
   ${recordingRestart(restartLog)[2]}`,
];

type Attacker = 'anonymous' | 'agent' | 'client' | 'operator' | 'hub';
type Attack = {
  what: string;
  topic: string;
  payload: string;
  retain?: boolean;
  /** Roles whose broker ACL lets this through and whose effect is theirs to have: checked apart, then undone. */
  allowedFor?: Attacker[];
  /** Whoever gets it past the broker, web-1 must refuse it for want of a signature, and say so. */
  refusedByAgent?: boolean;
  /** Roles besides hub whose ACL passes it on (an operator runs playbooks, so it may send seed commands). */
  passesBrokerFor?: Attacker[];
};

const now = () => new Date().toISOString();
const headOf = (sha: string, ref: string, receivedAt = now()): string =>
  JSON.stringify({
    v: SCHEMA_VERSION, deliveryId: `forged-${ref}`, source: 'post-receive', repo: 'acme/web', ref, refType: 'branch', branch: ref.replace('refs/heads/', ''), tag: null,
    before: ZERO_SHA, after: sha, created: false, deleted: false, forced: false, pusher: { name: 'mallory', email: null }, headCommit: null, cloneUrl: '', receivedAt,
  } satisfies PushMessage);
const control = (op: Record<string, unknown>) => ({ v: SCHEMA_VERSION, requestId: `r${Math.random().toString(36).slice(2)}`, by: 'mallory', ...op });

function attacks(old: string, deployed: string, nextRollout: string): Attack[] {
  const directive = (kind: 'pin' | 'rollback') => JSON.stringify({ v: SCHEMA_VERSION, kind, app: 'web', sha: old, rolloutId: null, by: 'mallory', at: now() });
  const current = rolloutChannel(rolloutId('web', ENV, deployed));
  const start = { v: SCHEMA_VERSION, kind: 'start', runId: 'r1', stepId: 's1', action: 'TOUCH', args: [], startAt: Date.now(), durationMs: null, sentAt: Date.now() };
  return [
    { what: 'a retained head with the old SHA (downgrade)', topic: MAIN, payload: headOf(old, 'refs/heads/main'), retain: true, refusedByAgent: true },
    { what: 'a head on an extra topic dated year 9999', topic: headTopic('acme/web', 'refs/heads/extra'), payload: headOf(old, 'refs/heads/extra', '9999-01-01T00:00:00.000Z'), retain: true },
    { what: 'a pin directive to the old SHA', topic: agentPinTopic('web-1', 'web'), payload: directive('pin'), retain: true, refusedByAgent: true },
    { what: 'a rollback directive to the old SHA', topic: agentRollbackTopic('web-1'), payload: directive('rollback'), refusedByAgent: true },
    { what: 'a forged go on the rollout channel', topic: `coordinosaur/${current}/go/web-1`, payload: 'web-1' },
    { what: 'concurrency/set 10 on the running rollout channel', topic: `coordinosaur/${current}/concurrency/set`, payload: '10' },
    { what: 'concurrency/set 10 on the next rollout channel', topic: `coordinosaur/${rolloutChannel(nextRollout)}/concurrency/set`, payload: '10' },
    { what: "finished of someone else's job", topic: 'coordinosaur/ci/finished', payload: 'job-1', allowedFor: ['operator', 'hub'] },
    { what: 'concurrency/set 1000 on a plain channel', topic: 'coordinosaur/ci/concurrency/set', payload: '1000', allowedFor: ['operator', 'hub'] },
    { what: 'a seed orchestrator COMMAND', topic: seedCommandTopic(SEED_DEFAULT_ROOT, 'web-1'), payload: 'TOUCH', refusedByAgent: true, passesBrokerFor: ['operator'] },
    { what: 'a native orchestrator node command', topic: nodeCommandTopic('web-1'), payload: JSON.stringify(start), refusedByAgent: true },
    { what: 'a fake agent ghost-1', topic: agentStatusTopic('ghost-1'), payload: JSON.stringify({ v: SCHEMA_VERSION, agent: 'ghost-1', state: 'online', labels: { env: ENV }, version: '0', startedAt: now(), at: now() }), retain: true },
    { what: 'a freeze by rollout control', topic: ROLLOUT_CONTROL, payload: JSON.stringify(control({ op: 'freeze', env: ENV })), allowedFor: ['operator', 'hub'] },
    { what: 'a pin by rollout control', topic: ROLLOUT_CONTROL, payload: JSON.stringify(control({ op: 'pin', agent: 'web-1', app: 'web', sha: old })), allowedFor: ['operator', 'hub'] },
  ];
}

/** What the broker does with an attacker's publish: a hub credential, or a role the ACL lets publish there, is let through. */
const REFUSAL: Record<Attacker, Outcome> = { anonymous: 'refused at login', agent: 'connection closed', client: 'connection closed', operator: 'connection closed', hub: 'accepted' };
const brokerAnswer = (who: Attacker, x: Pick<Attack, 'passesBrokerFor'>): Outcome => (x.passesBrokerFor?.includes(who) ? 'accepted' : REFUSAL[who]);

describe('issue 10 attacks replayed end to end against a fleet with auth and signing on', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  let git: GitFixture;
  let root: string;
  const urls = {} as Record<Attacker, string>;
  let operatorUrl: string;
  let base: string;
  let a: string;
  let b: string;
  let marker: string;
  let sem: Awaited<ReturnType<typeof coordinosaurClient>>;
  let owner: mqtt.MqttClient;
  let refused: Awaited<ReturnType<typeof watch>>;
  let replies: Awaited<ReturnType<typeof watch>>;
  let rollouts: Awaited<ReturnType<typeof watch>>;
  let settings: Awaited<ReturnType<typeof watch>>;
  let web1States: Awaited<ReturnType<typeof watch>>;
  let before: Record<string, unknown>;

  const restartLog = (host: string) => join(root, `${host}.restarts`);
  const overlaps = () => linesOf(join(root, 'overlap.log')).map(Number);
  const snapshot = (id: string) => {
    const last = rollouts.messages.filter((m) => m.topic === `pushfleet/rollouts/${id}/state` && m.payload).at(-1);
    const d = last && decode(RolloutSnapshot, last.payload);
    return d?.ok ? d.value : undefined;
  };
  const frozen = () => {
    const last = settings.messages.at(-1);
    return last ? RolloutSettings.parse(JSON.parse(last.payload)).frozen : undefined;
  };
  const web1 = () => {
    const last = web1States.messages.at(-1);
    const s = last && JSON.parse(last.payload);
    return s && { state: s.state, sha: s.sha, pinnedSha: s.pinnedSha };
  };
  const status = async () => {
    const r = await runCli(['status', '--mqtt-url', operatorUrl]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  const headsTable = () => storedHeads(hub.stateDir);
  /** Everything that must not move, read from the fleet itself. */
  const observe = async () => {
    const ci = await sem.infos('ci');
    const channels = await Promise.all([a, b].map((sha) => sem.infos(rolloutChannel(rolloutId('web', ENV, sha)))));
    return {
      web1Head: git.headOf(git.workdir('web-1')),
      restarts: Object.fromEntries(HOSTS.map((h) => [h, linesOf(restartLog(h))])),
      marker: existsSync(marker),
      web1: web1(),
      heads: headsTable(),
      frozen: frozen(),
      rolloutA: snapshot(rolloutId('web', ENV, a))?.status,
      ci: { max: ci.maxConcurrentJobs, working: uids(ci.working), waiting: uids(ci.waiting) },
      rolloutChannels: channels.map((c) => ({ max: c.maxConcurrentJobs, working: uids(c.working), waiting: uids(c.waiting) })),
    };
  };
  const loggedIn = (url: string) => waitFor(`login of ${new URL(url).username}`, async () => (await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000 }).then((c) => (c.end(true), true), () => false)));
  /** job-1 of client ci-1 holds the only slot of channel ci (as it did before the round). */
  const holdJob1 = async () => {
    const granted = new Promise<void>((resolve) => owner.on('message', (t) => t === 'coordinosaur/ci/go/job-1' && resolve()));
    await owner.publishAsync('coordinosaur/ci/register', JSON.stringify({ uid: 'job-1', timeout: 600 }), { qos: 1 });
    await granted;
  };

  beforeAll(async () => {
    git = new GitFixture({ 'app.txt': 'v0\n', 'health.txt': 'healthy\n' });
    cleanup.defer(() => git.remove());
    root = git.root;
    const busyDir = join(root, 'busy');
    mkdirSync(busyDir);
    marker = join(root, 'orchestrator-ran');
    // Log level error: the flood would print a warning per forged head.
    hub = await startTestHub(cleanup, 'aedes', { log: { level: 'error' }, engines: { rollouts: { defaults: { canary: 1, batchSize: 1, maxUnavailable: 1 } } } });
    rollouts = await watch(cleanup, hub.mqttUrl, ROLLOUT_STATE_ALL);
    settings = await watch(cleanup, hub.mqttUrl, ROLLOUT_SETTINGS);
    refused = await watch(cleanup, hub.mqttUrl, agentRefusedTopic('web-1'));
    replies = await watch(cleanup, hub.mqttUrl, rolloutReplyTopic('+'));
    web1States = await watch(cleanup, hub.mqttUrl, appStateTopic('web-1', 'web'));
    base = git.head();
    const touch = { command: [process.execPath, '-e', `require('fs').appendFileSync(${JSON.stringify(marker)}, 'ran\\n')`] };
    await Promise.all(
      HOSTS.map((id) =>
        startAgentProcess(cleanup, {
          id,
          mqttUrl: hub.mqttUrl,
          labels: { env: ENV },
          logLevel: 'info',
          apps: [rolloutWebApp(git, id, { restart: overlapRestart(restartLog(id)), health: { command: ['grep', '-qx', 'healthy', 'health.txt'], timeout: 1, interval: 0.2 }, env: { BUSY_DIR: busyDir, OVERLAP_LOG: join(root, 'overlap.log') } })],
          ...(id === 'web-1' && { orchestrator: { actions: { TOUCH: touch } } }),
        }),
      ),
    );
    // The fleet at A, deployed by the hub through a rollout.
    a = git.commit('A', { 'app.txt': 'A\n' });
    expect((await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: a, before: base })))).status).toBe(200);
    await waitFor(() => `rollout of A succeeded; last ${JSON.stringify(snapshot(rolloutId('web', ENV, a)))}`, () => snapshot(rolloutId('web', ENV, a))?.status === 'succeeded', 30_000);
    await waitFor('web-1 reported deployed at A', () => web1()?.state === 'deployed' && web1()?.sha === a);
    // B is in the repository already: the attackers can name its rollout before the hub does.
    b = git.commit('B', { 'app.txt': 'B\n', 'hold.txt': '1500' });

    urls.anonymous = withoutCredentials(hub.mqttUrl);
    urls.agent = existingUserUrl(hub.mqttUrl, 'web-2');
    const stolenClient = await userUrl(hub.mqttUrl, 'ci-2', 'client');
    urls.client = stolenClient;
    const op = readOperatorCredentials(hub.stateDir)!;
    urls.operator = operatorUrl = withCredentials(hub.mqttUrl, op.username, op.password);
    urls.hub = await userUrl(hub.mqttUrl, 'hub-2', 'hub');
    const ownerUrl = await userUrl(hub.mqttUrl, 'ci-1', 'client');
    // The users file is polled: every account added is let in before the rounds start.
    for (const u of [urls.client, urls.hub, ownerUrl]) await loggedIn(u);
    owner = await mqtt.connectAsync(ownerUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => owner.endAsync(true));
    await owner.subscribeAsync('coordinosaur/ci/+/job-1', { qos: 1 });
    sem = await coordinosaurClient(cleanup, hub.mqttUrl);
    await sem.publish('coordinosaur/ci/concurrency/set', '1');
    await holdJob1();

    before = await observe();
    expect(before).toMatchObject({ web1Head: a, marker: false, web1: { state: 'deployed', sha: a, pinnedSha: null }, heads: [[MAIN, a]], frozen: [], rolloutA: 'succeeded', ci: { max: 1, working: ['job-1'] } });
    expect(before.restarts).toEqual(Object.fromEntries(HOSTS.map((h) => [h, [a]])));
    expect(await status()).not.toContain('ghost-1');
  }, 60_000);
  afterAll(() => cleanup.run());

  it.each<Attacker>(['anonymous', 'agent', 'client', 'operator', 'hub'])('%s: every attack is refused and nothing moves', async (who) => {
    const list = attacks(base, a, rolloutId('web', ENV, b));
    const refusedBefore = refused.messages.length;
    const sent = list.filter((x) => !x.allowedFor?.includes(who));
    const outcomes: Record<string, Outcome> = {};
    for (const x of sent) outcomes[x.what] = await attempt(urls[who], x);
    outcomes[`a flood of ${FLOOD} retained heads`] = await flood(urls[who], FLOOD, (i) => ({ topic: headTopic('acme/web', `refs/heads/flood-${i}`), payload: headOf(a, `refs/heads/flood-${i}`) }));
    expect(outcomes).toEqual({ ...Object.fromEntries(sent.map((x) => [x.what, brokerAnswer(who, x)])), [`a flood of ${FLOOD} retained heads`]: REFUSAL[who] });

    // Past the broker, the agent's signature check is the last line: each action refused and reported.
    const reported = () => refused.messages.slice(refusedBefore).map((m) => SignedRefusal.parse(JSON.parse(m.payload)));
    for (const x of sent.filter((y) => y.refusedByAgent && brokerAnswer(who, y) === 'accepted')) {
      await waitFor(() => `web-1 reporting ${x.what} refused; got ${JSON.stringify(reported().map((r) => [r.topic, r.reason]).slice(0, 20))}`, () => reported().some((r) => r.topic === x.topic && r.reason === 'unsigned'));
    }
    if (who === 'hub') {
      // The hub stores only what it published, and puts its own head back.
      await waitFor(() => `only the hub's own head in its table; got ${headsTable().length} rows`, () => JSON.stringify(headsTable()) === JSON.stringify([[MAIN, a]]));
    }
    // Anything the broker passed has reached every subscriber by now; give the fleet a moment to (not) act.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await observe()).toEqual(before);
    // A hub credential may publish an agent's status: ghost-1 is listed, but nothing acts on it (the last test's rollout does not wait for it).
    // Read again until it shows: with the hub role's 5,000 retained heads in aedes, a status read on a loaded machine can end before every retained status arrived.
    if (who === 'hub') await waitFor('ghost-1 in pushfleet status', async () => (await status()).includes('ghost-1'));
    else expect(await status()).not.toContain('ghost-1');

    // What an operator (and so the hub role) may do, the attacks left out above: it works, and is undone.
    if (who !== 'operator' && who !== 'hub') return;
    await attempt(urls[who], { topic: 'coordinosaur/ci/concurrency/set', payload: '2' });
    await waitFor('ci limit 2', async () => (await sem.infos('ci')).maxConcurrentJobs === 2);
    expect(await attempt(urls[who], { topic: 'coordinosaur/ci/finished', payload: 'job-1' })).toBe('accepted');
    await waitFor('job-1 ended by someone else', async () => (await sem.infos('ci')).working.length === 0);
    const ask = async (op: Record<string, unknown>) => {
      const req = control(op);
      expect(await attempt(urls[who], { topic: ROLLOUT_CONTROL, payload: JSON.stringify(req) })).toBe('accepted');
      const reply = await waitFor(`reply to ${String(op.op)}`, () => replies.messages.find((m) => m.topic === rolloutReplyTopic(req.requestId)));
      expect(JSON.parse(reply.payload)).toMatchObject({ ok: true, error: null });
    };
    await ask({ op: 'freeze', env: ENV });
    await waitFor('production frozen', () => frozen()?.includes(ENV));
    // Pinned where it is, so the undo needs no deploy: the point is the hub obeys an operator.
    await ask({ op: 'pin', agent: 'web-1', app: 'web', sha: a });
    await waitFor('web-1 pinned', () => web1()?.pinnedSha === a);
    await ask({ op: 'unpin', agent: 'web-1', app: 'web' });
    await ask({ op: 'unfreeze', env: ENV });
    await attempt(urls[who], { topic: 'coordinosaur/ci/concurrency/set', payload: '1' });
    await holdJob1();
    await waitFor('web-1 unpinned, production unfrozen', () => web1()?.pinnedSha === null && frozen()?.length === 0);
    expect(await observe()).toEqual(before);
  }, 30_000);

  it('a genuine signed push still deploys, canary first and one host at a time, with no host waited for that is not there', async () => {
    const hostsBefore = overlaps().length;
    expect((await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: b, before: a })))).status).toBe(200);
    // While the canary updates, each attacker with a login tries to widen the rollout or free the canary's slot.
    const id = rolloutId('web', ENV, b);
    const canary = await waitFor('the canary updating', () => snapshot(id)?.hosts.find((h) => h.state === 'updating')?.agent);
    const channel = `coordinosaur/${rolloutChannel(id)}`;
    for (const who of ['agent', 'client', 'operator', 'hub'] as const) {
      expect(await attempt(urls[who], { topic: `${channel}/concurrency/set`, payload: '10' }), who).toBe(REFUSAL[who]);
      // web-2's own account may end web-2's own job: that is no one else's uid. A hub account may
      // publish anything else: a host's rollout job is the one thing the broker keeps from it.
      if (!(who === 'agent' && canary === 'web-2')) expect(await attempt(urls[who], { topic: `${channel}/finished`, payload: canary }), who).toBe('connection closed');
    }
    const done = await waitFor(() => `rollout of B succeeded; last ${JSON.stringify(snapshot(rolloutId('web', ENV, b)))}`, () => {
      const s = snapshot(rolloutId('web', ENV, b));
      return s?.status === 'succeeded' && s;
    }, 30_000);
    expect(done.hosts.map((h) => h.agent).sort()).toEqual(HOSTS);
    for (const h of HOSTS) expect(git.headOf(git.workdir(h))).toBe(b);
    expect(overlaps().slice(hostsBefore)).toEqual([1, 1, 1]);
    expect(linesOf(restartLog('web-1'))).toEqual([a, b]);
    expect(existsSync(marker)).toBe(false);
    expect(headsTable()).toEqual([[MAIN, b]]);
  }, 40_000);
});

import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineContext } from '../../src/hub/engines/engine.js';
import { RolloutsConfig } from '../../src/hub/engines/rollouts/config.js';
import { RolloutsEngine } from '../../src/hub/engines/rollouts/rollouts-engine.js';
import { SemaphoreConfig } from '../../src/hub/engines/semaphore/config.js';
import { SemaphoreEngine } from '../../src/hub/engines/semaphore/semaphore-engine.js';
import { SCHEMA_VERSION, type AppState, type PushMessage } from '../../src/shared/messages.js';
import { applyRolloutEvent, type RolloutEvent, type RolloutHostState, type RolloutPolicyRule, type RolloutReply, type RolloutSnapshot } from '../../src/shared/contract/rollout-messages.js';
import { topicMatches } from '../../src/shared/topic-match.js';
import {
  agentPinTopic,
  agentRollbackTopic,
  agentStatusTopic,
  appStateTopic,
  pushTopic,
  ROLLOUT_CONTROL,
  ROLLOUT_SETTINGS,
  rolloutChannel,
  rolloutEventsTopic,
  rolloutId,
  rolloutReplyTopic,
  rolloutStateTopic,
} from '../../src/shared/topics.js';
import { ManualClock } from '../support/manual-clock.js';
import { Cleanup } from '../support/cleanup.js';
import { openStateDb } from '../../src/hub/state-db.js';
import { TickBatch } from '../../src/hub/tick-batch.js';

const SHA = 'a'.repeat(40);
const SHA2 = 'c'.repeat(40);
const OLD = 'b'.repeat(40);
const T0 = Date.parse('2025-01-01T00:00:00Z');
const ID = rolloutId('web', 'prod', SHA);


type Sent = { topic: string; payload: string; retain: boolean };

/**
 * The semaphore and rollouts engines over an in-memory SQLite file, a recording publisher and a
 * manual clock; `send` routes a message to the engines subscribed to it, as the dispatcher does.
 * Pass `db` and `clock` of an earlier hub to simulate a restart. Snapshots are republished on every
 * change here (snapshotIntervalMs 0), so each step can be read from the last one.
 */
async function startHub(
  defaults: Omit<RolloutPolicyRule, 'app' | 'env'> = {},
  opts: { db?: Database.Database; clock?: ManualClock; config?: Record<string, unknown>; heads?: { payload: string }[]; batch?: TickBatch; onPublish?: (topic: string, payload: string) => void } = {},
) {
  const db = opts.db ?? new Database(':memory:');
  const clock = opts.clock ?? new ManualClock(T0);
  const sent: Sent[] = [];
  const changes: string[] = [];
  const ctx: EngineContext = {
    publisher: {
      publish: async (topic, payload, o) => {
        opts.onPublish?.(topic, payload);
        sent.push({ topic, payload, retain: o.retain ?? false });
      },
    },
    db,
    ...(opts.batch && { batch: opts.batch }),
    clock,
    log: pino({ level: 'silent' }),
    changed: (area, id) => void changes.push(id === undefined ? area : `${area} ${id}`),
  };
  const semaphore = new SemaphoreEngine(ctx, SemaphoreConfig.parse({ positionUpdateMs: 0 }));
  const heads = { list: () => opts.heads ?? [] };
  const rollouts = new RolloutsEngine(ctx, RolloutsConfig.parse({ defaults: { hostTimeout: 60, ...defaults }, snapshotIntervalMs: 0, ...opts.config }), semaphore, undefined, heads);
  const engines = [semaphore, rollouts];
  for (const e of engines) await e.start();

  const send = (topic: string, payload: object | string) => {
    const raw = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
    for (const e of engines) if (e.subscriptions.some((f) => topicMatches(f, topic))) void e.handle(topic, raw);
  };
  const channelTopic = (action: string, sha = SHA, env = 'prod') => `coordinosaur/${rolloutChannel(rolloutId('web', env, sha))}/${action}`;

  const appState = (agent: string, patch: Partial<AppState> = {}) =>
    send(appStateTopic(agent, 'web'), {
      v: SCHEMA_VERSION, agent, app: 'web', repo: 'acme/web', ref: 'refs/heads/main', state: 'deployed', sha: OLD, targetSha: null, lastError: null,
      durations: {}, updatedAt: new Date(clock.time).toISOString(), follows: { kind: 'branch', pattern: 'main' }, rollout: true, pinnedSha: null, deliveryId: null, retrying: null, interrupted: null, refusedHead: null, retryRequest: null, refused: null, ...patch,
    } satisfies AppState);
  const status = (agent: string, state: 'online' | 'offline' = 'online', env = 'prod') =>
    send(agentStatusTopic(agent), { v: SCHEMA_VERSION, agent, state, labels: { env }, version: '0.1.0', startedAt: null, at: new Date(clock.time).toISOString() });

  return {
    db,
    clock,
    sent,
    changes,
    rollouts,
    send,
    stop: async () => {
      for (const e of [...engines].reverse()) await e.stop();
    },
    /** Online agents on `env` whose app web follows main with rollout: true, on OLD. */
    agents(ids: string[], env = 'prod') {
      for (const id of ids) {
        status(id, 'online', env);
        appState(id);
      }
    },
    status,
    appState,
    push(after = SHA) {
      send(pushTopic('acme/web'), pushMessage(after, clock.time));
    },
    register: (uid: string, sha = SHA, env = 'prod') => send(channelTopic('register', sha, env), { uid, timeout: 3600 }),
    finish: (uid: string, sha = SHA) => send(channelTopic('finished', sha), uid),
    abortJob: (uid: string, sha = SHA) => send(channelTopic('aborted', sha), uid),
    /** Agents that were sent `go` (in order), optionally only since `from` messages were sent. */
    // An empty go is a cleared retained go (its job ended), not a grant.
    gos: (from = 0) => sent.slice(from).flatMap((m) => (/\/go\/[^/]+$/.test(m.topic) && m.payload !== '' ? [m.payload] : [])),
    expired: (from = 0) => sent.slice(from).flatMap((m) => (/\/expired\/[^/]+$/.test(m.topic) && m.payload !== '' ? [[JSON.parse(m.payload).uid, JSON.parse(m.payload).reason]] : [])),
    /** The rollout's last retained state. */
    snapshot(id = ID): RolloutSnapshot | null {
      const m = sent.filter((s) => s.topic === rolloutStateTopic(id)).at(-1);
      return m && m.payload ? (JSON.parse(m.payload) as RolloutSnapshot) : null;
    },
    hosts(id = ID): Record<string, RolloutHostState> {
      return Object.fromEntries((this.snapshot(id)?.hosts ?? []).map((h) => [h.agent, h.state]));
    },
    events: (id = ID) => sent.filter((s) => s.topic === rolloutEventsTopic(id)).map((s) => JSON.parse(s.payload) as RolloutEvent),
    control(requestId: string, req: Record<string, unknown>): RolloutReply {
      send(ROLLOUT_CONTROL, { v: SCHEMA_VERSION, requestId, by: 'bob', ...req });
      const reply = sent.filter((s) => s.topic === rolloutReplyTopic(requestId));
      expect(reply).toHaveLength(1);
      expect(reply[0]!.retain).toBe(false);
      return JSON.parse(reply[0]!.payload) as RolloutReply;
    },
  };
}

function pushMessage(after: string, at: number): PushMessage {
  return {
    v: SCHEMA_VERSION, deliveryId: `d-${after.slice(0, 6)}`, source: 'github', repo: 'acme/web', ref: 'refs/heads/main', refType: 'branch', branch: 'main', tag: null,
    before: OLD, after, created: false, deleted: false, forced: false, pusher: { name: 'alice', email: null }, headCommit: null,
    cloneUrl: 'https://github.com/acme/web.git', receivedAt: new Date(at).toISOString(),
  };
}

/** The most hosts updating at once in any state the hub published. */
function maxConcurrent(sent: Sent[]): number {
  const updating = sent.filter((m) => m.topic.endsWith('/state') && m.payload).map((m) => (JSON.parse(m.payload) as RolloutSnapshot).hosts.filter((h) => h.state === 'updating').length);
  return Math.max(0, ...updating);
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `a${i + 1}`);

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('rollouts engine', () => {
  it("with the hub's per-turn commit, publishes a go or a host's event only once the host's row says so", async () => {
    const dir = cleanup.tempDir('pushfleet-rollout-commit-');
    const db = openStateDb(dir);
    cleanup.defer(() => db.close());
    // A second connection reads what is committed: what a hub restarted after a kill -9 would find.
    const reader = new Database(join(dir, 'hub.sqlite'), { readonly: true });
    cleanup.defer(() => reader.close());
    const stateOf = (agent: string) => {
      try {
        return reader.prepare<[string, string], { state: string }>('SELECT state FROM rollout_hosts WHERE rollout = ? AND agent = ?').get(ID, agent)?.state;
      } catch {
        return undefined; // the table is not committed yet
      }
    };
    const problems: string[] = [];
    let checked = 0;
    const onPublish = (topic: string, payload: string) => {
      const go = /\/go\/([^/]+)$/.exec(topic)?.[1];
      if (go !== undefined && payload !== '' && topic.includes(rolloutChannel(ID))) {
        checked++;
        if (stateOf(go) !== 'updating') problems.push(`go ${go} published while its row says ${stateOf(go)}`);
      }
      if (topic === rolloutEventsTopic(ID)) {
        const e = JSON.parse(payload) as RolloutEvent;
        if (e.agent === null) return;
        checked++;
        if (stateOf(e.agent) !== e.state) problems.push(`event ${e.agent} → ${e.state} published while its row says ${stateOf(e.agent)}`);
      }
    };
    const turn = () => new Promise((r) => setImmediate(r));
    const hub = await startHub({ batchSize: 2, canary: 0, maxUnavailable: 2, failureThreshold: 1 }, { db, batch: new TickBatch(db), onPublish });
    hub.agents(ids(6));
    hub.push();
    for (const id of ids(6)) hub.register(id);
    await turn();
    // Each finished hands its slot to the next host in the same turn: its go follows that turn's commit.
    for (const pair of [ids(6).slice(0, 2), ids(6).slice(2, 4), ids(6).slice(4)]) {
      for (const id of pair) hub.finish(id);
      await turn();
    }
    await hub.stop();
    expect(problems).toEqual([]);
    // Per host its go and its updating and succeeded events; queued events for the four that waited.
    expect(checked).toBe(6 * 3 + 4);
    expect(Object.values(hub.hosts())).toEqual(Array(6).fill('succeeded'));
  });

  it('tells the hub of each change of a rollout, and of a freeze, for the API\'s live updates', async () => {
    const hub = await startHub({ batchSize: 1 });
    hub.agents(['a1']);
    hub.push();
    expect(hub.changes).toEqual([`rollouts ${ID}`]);
    hub.register('a1');
    expect(hub.changes.slice(1).every((c) => c === `rollouts ${ID}`) && hub.changes.length > 1).toBe(true);
    hub.changes.length = 0;
    expect(hub.control('r1', { op: 'freeze', env: 'prod' }).ok).toBe(true);
    expect(hub.changes.at(-1)).toBe('rollouts');
    // The in-process call the REST API makes answers as the MQTT request does.
    expect(hub.rollouts.control({ v: SCHEMA_VERSION, requestId: 'r2', by: 'api', op: 'pause', id: ID })).toMatchObject({ ok: false, error: expect.stringContaining('frozen') });
    expect(hub.rollouts.history.recent(0, 10)).toMatchObject({ total: 1, items: [{ id: ID, status: 'frozen' }] });
  });

  it('grants nobody until it has seen the push, then the canary, then a rolling batch', async () => {
    const hub = await startHub({ batchSize: 2, canary: 1, maxUnavailable: 2, failureThreshold: 1 });
    hub.agents(ids(5));
    // Agents heard of the push (the retained head) before the hub's rollouts engine did.
    for (const a of ids(5)) hub.register(a);
    expect(hub.gos()).toEqual([]);
    expect(hub.snapshot()).toBeNull();

    hub.push();
    expect(hub.gos()).toEqual(['a1']);
    expect(hub.snapshot()).toMatchObject({ status: 'running', sha: SHA, env: 'prod', policy: { batchSize: 2, canary: 1 } });
    expect(hub.hosts()).toEqual({ a1: 'updating', a2: 'queued', a3: 'queued', a4: 'queued', a5: 'queued' });
    expect(hub.snapshot()!.hosts[0]).toMatchObject({ canary: true, fromSha: OLD });

    // The canary is done: two at a time, and a freed slot is refilled at once.
    let mark = hub.sent.length;
    hub.finish('a1');
    expect(hub.gos(mark)).toEqual(['a2', 'a3']);
    mark = hub.sent.length;
    hub.finish('a3');
    expect(hub.gos(mark)).toEqual(['a4']);
    expect(hub.hosts()).toEqual({ a1: 'succeeded', a2: 'updating', a3: 'succeeded', a4: 'updating', a5: 'queued' });
    hub.finish('a2');
    hub.finish('a4');
    hub.finish('a5');
    expect(hub.gos()).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
    expect(hub.snapshot()).toMatchObject({ status: 'succeeded', reason: null });
    expect(hub.sent.filter((s) => s.topic === rolloutStateTopic(ID)).every((s) => s.retain)).toBe(true);
    expect(hub.events().map((e) => [e.agent, e.state]).filter(([a]) => a === null)).toEqual([
      [null, 'running'],
      [null, 'succeeded'],
    ]);
    await hub.stop();
  });

  it('never lets more than the batch update at once, whatever the order agents register in', async () => {
    const hub = await startHub({ batchSize: 3, canary: 0, maxUnavailable: 3, failureThreshold: 1 });
    hub.agents(ids(10));
    hub.push();
    expect(hub.hosts()).toMatchObject({ a1: 'pending', a10: 'pending' });
    for (const a of ids(10).reverse()) hub.register(a);
    expect(hub.gos()).toEqual(['a10', 'a9', 'a8']);
    let done = 0;
    while (done < 10) {
      const working = hub.gos().filter((a) => hub.hosts()[a] === 'updating');
      expect(working.length).toBeLessThanOrEqual(3);
      hub.finish(working[0]!);
      done++;
    }
    expect(maxConcurrent(hub.sent)).toBe(3);
    expect(hub.snapshot()!.status).toBe('succeeded');
    await hub.stop();
  });

  it('times out a host that does not answer, takes its slot back and counts it as failed', async () => {
    const hub = await startHub({ batchSize: 1, canary: 0, maxUnavailable: 3, failureThreshold: 2, hostTimeout: 30 });
    hub.agents(ids(4));
    hub.push();
    for (const a of ids(4)) hub.register(a);
    expect(hub.gos()).toEqual(['a1']);
    hub.clock.advance(29_999);
    expect(hub.expired()).toEqual([]);
    hub.clock.advance(1);
    expect(hub.expired()).toEqual([['a1', 'timeout']]);
    expect(hub.gos()).toEqual(['a1', 'a2']);
    expect(hub.snapshot()!.hosts[0]).toMatchObject({ agent: 'a1', state: 'timed-out', error: 'no result within 30 s', down: true });
    expect(hub.snapshot()!.status).toBe('running');
    // A host that answers in time is not timed out later.
    hub.clock.advance(10_000);
    hub.finish('a2');
    hub.clock.advance(60_000);
    expect(hub.hosts()).toMatchObject({ a2: 'succeeded' });
    // a3 was granted when a2 finished (at +40 s), so it times out at +70 s: the second failure aborts.
    expect(hub.expired()).toHaveLength(3);
    expect(hub.expired()).toEqual(expect.arrayContaining([['a1', 'timeout'], ['a3', 'timeout'], ['a4', 'cancelled']]));
    expect(hub.snapshot()).toMatchObject({ status: 'aborted', reason: '2 host(s) failed (threshold 2); last: a3: no result within 30 s' });
    expect(hub.hosts()).toEqual({ a1: 'timed-out', a2: 'succeeded', a3: 'timed-out', a4: 'skipped' });
    // The agent's late result is refused by the semaphore, and changes nothing.
    hub.finish('a3');
    expect(hub.hosts().a3).toBe('timed-out');
    await hub.stop();
  });

  it('reads a failed host’s outcome from its app state, and sends hosts back on abort with onAbort rollback', async () => {
    const hub = await startHub({ batchSize: 2, canary: 0, maxUnavailable: 2, failureThreshold: 2, onAbort: 'rollback' });
    hub.agents(ids(4));
    hub.push();
    for (const a of ids(4)) hub.register(a);
    hub.appState('a1', { sha: SHA, state: 'deployed' });
    hub.finish('a1');
    // a2 failed its health check and went back to OLD by itself; then it returns its slot.
    hub.appState('a2', { sha: OLD, targetSha: SHA, state: 'rolled-back', lastError: { step: 'health', message: 'HTTP 503', outputTail: '' } });
    hub.abortJob('a2');
    expect(hub.snapshot()!.hosts[1]).toMatchObject({ agent: 'a2', state: 'failed', error: 'health: HTTP 503', down: false });
    // a3 failed and could not get back: it is down.
    hub.appState('a3', { sha: SHA, targetSha: SHA, state: 'failed', lastError: { step: 'restart', message: 'exit 1', outputTail: '' } });
    hub.abortJob('a3');
    expect(hub.snapshot()!.hosts[2]).toMatchObject({ agent: 'a3', state: 'failed', error: 'restart: exit 1', down: true });
    expect(hub.snapshot()!.status).toBe('aborted');
    const rollbacks = hub.sent.filter((s) => s.topic.endsWith('/rollback'));
    expect(rollbacks.map((s) => [s.topic, s.retain])).toEqual([[agentRollbackTopic('a1'), false]]);
    expect(JSON.parse(rollbacks[0]!.payload)).toMatchObject({ kind: 'rollback', app: 'web', sha: OLD, rolloutId: ID, by: 'rollouts' });
    // a4 was updating when the rollout aborted: it finishes, then is sent back too.
    hub.finish('a4');
    expect(hub.sent.filter((s) => s.topic.endsWith('/rollback')).map((s) => s.topic)).toEqual([agentRollbackTopic('a1'), agentRollbackTopic('a4')]);
    expect(hub.hosts()).toEqual({ a1: 'rolled-back', a2: 'failed', a3: 'failed', a4: 'rolled-back' });
    // a4 missed its rollback (offline): back online on the aborted SHA, it is sent back again;
    // once on OLD, nothing more is sent.
    hub.appState('a4', { sha: SHA, state: 'deployed' });
    hub.appState('a4', { sha: OLD, state: 'deployed' });
    expect(hub.sent.filter((s) => s.topic.endsWith('/rollback')).map((s) => s.topic)).toEqual([agentRollbackTopic('a1'), agentRollbackTopic('a4'), agentRollbackTopic('a4')]);
    await hub.stop();
  });

  it('aborts at once on a failed canary and turns the waiting hosts away', async () => {
    const hub = await startHub({ batchSize: 2, canary: 1, failureThreshold: 5 });
    hub.agents(ids(3));
    hub.push();
    for (const a of ids(3)) hub.register(a);
    hub.abortJob('a1');
    expect(hub.snapshot()).toMatchObject({ status: 'aborted', reason: 'canary a1 failed: the update failed' });
    expect(hub.expired()).toEqual([
      ['a2', 'cancelled'],
      ['a3', 'cancelled'],
    ]);
    expect(hub.gos()).toEqual(['a1']);
    // An agent that registers again later is turned away at once.
    const mark = hub.sent.length;
    hub.register('a2');
    expect(hub.expired(mark)).toEqual([['a2', 'cancelled']]);
    expect(hub.gos(mark)).toEqual([]);
    await hub.stop();
  });

  it('a newer push supersedes the running rollout: waiting hosts skip the old SHA, updating ones still count as unavailable', async () => {
    const hub = await startHub({ batchSize: 1, canary: 0, maxUnavailable: 1 });
    hub.agents(ids(3));
    hub.push(SHA);
    for (const a of ids(3)) hub.register(a);
    expect(hub.gos()).toEqual(['a1']);
    const mark = hub.sent.length;
    hub.push(SHA2);
    const id2 = rolloutId('web', 'prod', SHA2);
    expect(hub.snapshot()).toMatchObject({ status: 'superseded', reason: `superseded by ${id2}` });
    expect(hub.hosts()).toEqual({ a1: 'updating', a2: 'skipped', a3: 'skipped' });
    expect(hub.expired(mark)).toEqual([
      ['a2', 'cancelled'],
      ['a3', 'cancelled'],
    ]);
    expect(hub.snapshot(id2)).toMatchObject({ status: 'running', sha: SHA2 });
    expect(hub.hosts(id2)).toEqual({ a1: 'pending', a2: 'pending', a3: 'pending' });
    // a1 still updates the old SHA and maxUnavailable is 1: the new rollout waits for it.
    hub.register('a2', SHA2);
    expect(hub.gos(mark)).toEqual([]);
    // a1 finishes the old SHA: counted there, the old rollout stays superseded, a2 may start.
    hub.finish('a1', SHA);
    expect(hub.snapshot()).toMatchObject({ status: 'superseded' });
    expect(hub.hosts().a1).toBe('succeeded');
    expect(hub.gos(mark)).toEqual(['a2']);
    await hub.stop();
  });

  it('ignores the same push delivered twice', async () => {
    const hub = await startHub({ batchSize: 1, canary: 0 });
    hub.agents(ids(2));
    hub.push();
    hub.register('a1');
    hub.push();
    expect(hub.hosts()).toEqual({ a1: 'updating', a2: 'pending' });
    expect(hub.events().filter((e) => e.agent === null)).toHaveLength(1);
    await hub.stop();
  });

  it('takes a waiting host out when its agent goes offline', async () => {
    const hub = await startHub({ batchSize: 1, canary: 0 });
    hub.agents(ids(3));
    hub.push();
    for (const a of ids(2)) hub.register(a);
    hub.status('a2', 'offline');
    hub.status('a3', 'offline');
    expect(hub.hosts()).toEqual({ a1: 'updating', a2: 'offline', a3: 'offline' });
    expect(hub.expired()).toEqual([['a2', 'cancelled']]);
    hub.finish('a1');
    expect(hub.snapshot()!.status).toBe('succeeded');
    // Back online, it registers: the rollout runs again until it is done.
    hub.status('a3', 'online');
    hub.register('a3');
    expect(hub.snapshot()!.status).toBe('running');
    expect(hub.gos()).toEqual(['a1', 'a3']);
    hub.finish('a3');
    expect(hub.snapshot()!.status).toBe('succeeded');
    await hub.stop();
  });

  it('admits a late joiner to a succeeded rollout, and turns away a host done there already', async () => {
    const hub = await startHub({ batchSize: 1, canary: 0 });
    hub.agents(ids(1));
    hub.push();
    hub.register('a1');
    hub.finish('a1');
    expect(hub.snapshot()!.status).toBe('succeeded');
    hub.register('late');
    expect(hub.snapshot()!.status).toBe('running');
    expect(hub.hosts()).toEqual({ a1: 'succeeded', late: 'updating' });
    hub.finish('late');
    expect(hub.snapshot()!.status).toBe('succeeded');
    // a1 (restarted, say) asks again: it keeps its outcome and is sent away.
    const mark = hub.sent.length;
    hub.register('a1');
    expect(hub.expired(mark)).toEqual([['a1', 'cancelled']]);
    expect(hub.hosts()).toEqual({ a1: 'succeeded', late: 'succeeded' });
    expect(hub.snapshot()!.status).toBe('succeeded');
    await hub.stop();
  });

  it('keeps the outcome of a host that finished while a timeout was pending on an ended rollout', async () => {
    // a1 aborts the rollout; a2 and a3 are still updating. a2 finishes (the rollout, ended, is
    // reloaded from the store), then a3 times out: a2's success must survive.
    const hub = await startHub({ batchSize: 3, canary: 0, maxUnavailable: 3, failureThreshold: 1, hostTimeout: 30 });
    hub.agents(ids(3));
    hub.push();
    for (const a of ids(3)) hub.register(a);
    hub.abortJob('a1');
    expect(hub.snapshot()!.status).toBe('aborted');
    hub.finish('a2');
    expect(hub.hosts()).toEqual({ a1: 'failed', a2: 'succeeded', a3: 'updating' });
    hub.clock.advance(30_000);
    expect(hub.hosts()).toEqual({ a1: 'failed', a2: 'succeeded', a3: 'timed-out' });
    await hub.stop();
  });

  describe('control requests', () => {
    it('pauses and resumes admission; updating hosts finish meanwhile', async () => {
      const hub = await startHub({ batchSize: 1, canary: 0 });
      hub.agents(ids(3));
      hub.push();
      for (const a of ids(3)) hub.register(a);
      expect(hub.control('r1', { op: 'pause', id: ID })).toEqual({ v: 1, requestId: 'r1', ok: true, error: null });
      expect(hub.snapshot()).toMatchObject({ status: 'paused', reason: 'paused by an operator' });
      hub.finish('a1');
      expect(hub.gos()).toEqual(['a1']);
      expect(hub.control('r2', { op: 'pause', id: ID })).toMatchObject({ ok: false, error: `rollout ${ID} is paused, not running` });
      expect(hub.control('r3', { op: 'resume', id: ID })).toMatchObject({ ok: true });
      expect(hub.gos()).toEqual(['a1', 'a2']);
      expect(hub.control('r4', { op: 'resume', id: ID })).toMatchObject({ ok: false, error: `rollout ${ID} is running, not paused` });
      await hub.stop();
    });

    it('aborts a rollout on request and refuses to abort it twice or an unknown one', async () => {
      const hub = await startHub({ batchSize: 1, canary: 0 });
      hub.agents(ids(3));
      hub.push();
      for (const a of ids(3)) hub.register(a);
      expect(hub.control('r1', { op: 'abort', id: ID })).toMatchObject({ ok: true, error: null });
      expect(hub.snapshot()).toMatchObject({ status: 'aborted', reason: 'aborted by bob' });
      expect(hub.expired()).toEqual([
        ['a2', 'cancelled'],
        ['a3', 'cancelled'],
      ]);
      expect(hub.control('r2', { op: 'abort', id: ID })).toMatchObject({ ok: false, error: `rollout ${ID} is already aborted` });
      expect(hub.control('r3', { op: 'pause', id: 'web.prod.000000000000' })).toMatchObject({ ok: false, error: expect.stringContaining('no rollout web.prod.000000000000') });
      // A request without a valid requestId cannot be answered: it is dropped.
      const mark = hub.sent.length;
      hub.send(ROLLOUT_CONTROL, { v: 1, requestId: 'a/b', by: 'x', op: 'list' });
      hub.send(ROLLOUT_CONTROL, 'not json');
      expect(hub.sent.length).toBe(mark);
      await hub.stop();
    });

    it('lists recent rollouts with host counts per state', async () => {
      const hub = await startHub({ batchSize: 1, canary: 0 });
      hub.agents(ids(3));
      hub.push(SHA);
      hub.register('a1');
      hub.finish('a1');
      hub.clock.advance(1000);
      hub.push(SHA2);
      const reply = hub.control('r1', { op: 'list' });
      expect(reply.ok).toBe(true);
      expect(reply.rollouts!.map((r) => [r.id, r.status, r.counts])).toEqual([
        [rolloutId('web', 'prod', SHA2), 'running', { pending: 3 }],
        [ID, 'superseded', { succeeded: 1, skipped: 2 }],
      ]);
      expect(reply.rollouts![0]).not.toHaveProperty('hosts');
      expect(hub.control('r2', { op: 'list', limit: 1 }).rollouts).toHaveLength(1);
      await hub.stop();
    });

    it('freezes an environment: admission stops, new pushes wait, unfreeze starts them', async () => {
      const hub = await startHub({ batchSize: 2, canary: 0 });
      hub.agents(ids(3));
      hub.agents(['s1'], 'staging');
      hub.push();
      for (const a of ids(3)) hub.register(a);
      expect(hub.gos()).toEqual(['a1', 'a2']);
      expect(hub.control('r1', { op: 'freeze', env: 'prod' })).toMatchObject({ ok: true });
      const settings = hub.sent.filter((s) => s.topic === ROLLOUT_SETTINGS);
      expect(settings.at(-1)!.retain).toBe(true);
      expect(JSON.parse(settings.at(-1)!.payload)).toMatchObject({ frozen: ['prod'] });
      expect(hub.snapshot()!.status).toBe('frozen');
      hub.finish('a1');
      expect(hub.gos()).toEqual(['a1', 'a2']);

      // A push while frozen is recorded as a frozen rollout; staging is not frozen.
      hub.push(SHA2);
      const id2 = rolloutId('web', 'prod', SHA2);
      expect(hub.snapshot()!.status).toBe('superseded');
      expect(hub.snapshot(id2)).toMatchObject({ status: 'frozen', reason: 'environment prod is frozen: starts on unfreeze' });
      expect(hub.snapshot(rolloutId('web', 'staging', SHA2))!.status).toBe('running');
      hub.register('a3', SHA2);
      expect(hub.gos()).toEqual(['a1', 'a2']);
      expect(hub.control('r2', { op: 'resume', id: id2 })).toMatchObject({ ok: false, error: 'environment prod is frozen: unfreeze it to start this rollout' });

      expect(hub.control('r3', { op: 'unfreeze', env: 'prod' })).toMatchObject({ ok: true });
      expect(JSON.parse(hub.sent.filter((s) => s.topic === ROLLOUT_SETTINGS).at(-1)!.payload)).toMatchObject({ frozen: [] });
      expect(hub.snapshot(id2)!.status).toBe('running');
      expect(hub.gos()).toEqual(['a1', 'a2', 'a3']);
      await hub.stop();
    });

    it('pins a host: a retained directive, and the host is left out of the rollout; unpin clears it', async () => {
      const hub = await startHub({ batchSize: 1, canary: 0 });
      hub.agents(ids(2));
      hub.push();
      for (const a of ids(2)) hub.register(a);
      expect(hub.control('r1', { op: 'pin', agent: 'a2', app: 'web', sha: SHA2 })).toMatchObject({ ok: true });
      const pin = hub.sent.filter((s) => s.topic === agentPinTopic('a2', 'web'));
      expect(pin.map((p) => p.retain)).toEqual([true]);
      expect(JSON.parse(pin[0]!.payload)).toMatchObject({ kind: 'pin', app: 'web', sha: SHA2, rolloutId: null, by: 'bob' });
      expect(hub.snapshot()!.hosts[1]).toMatchObject({ agent: 'a2', state: 'skipped', error: 'pinned to cccccccc by bob' });
      expect(hub.expired()).toEqual([['a2', 'cancelled']]);
      hub.finish('a1');
      expect(hub.snapshot()!.status).toBe('succeeded');

      expect(hub.control('r2', { op: 'unpin', agent: 'a2', app: 'web' })).toMatchObject({ ok: true });
      expect(hub.sent.filter((s) => s.topic === agentPinTopic('a2', 'web')).at(-1)).toEqual({ topic: agentPinTopic('a2', 'web'), payload: '', retain: true });
      // Unpinned, the agent catches up with its branch's newest SHA: this rollout's.
      hub.register('a2');
      expect(hub.gos()).toEqual(['a1', 'a2']);
      expect(hub.hosts().a2).toBe('updating');
      expect(hub.snapshot()!.status).toBe('running');
      await hub.stop();
    });
  });

  it('resumes a running rollout after a restart: slots, timeouts and limits', async () => {
    const db = new Database(':memory:');
    const clock = new ManualClock(T0);
    const defaults = { batchSize: 2, canary: 0, maxUnavailable: 3, failureThreshold: 3, hostTimeout: 60 };
    const first = await startHub(defaults, { db, clock });
    first.agents(ids(5));
    first.push();
    for (const a of ids(5)) first.register(a);
    first.finish('a1');
    expect(first.gos()).toEqual(['a1', 'a2', 'a3']);
    clock.advance(20_000);
    await first.stop();

    const second = await startHub(defaults, { db, clock });
    // The state is republished as it was: nothing is granted twice; the holders' retained go is published again.
    expect(second.snapshot()).toMatchObject({ status: 'running' });
    expect(second.hosts()).toEqual({ a1: 'succeeded', a2: 'updating', a3: 'updating', a4: 'queued', a5: 'queued' });
    expect(second.gos()).toEqual(['a2', 'a3']);
    const restored = second.sent.length;
    second.agents(ids(5));
    second.finish('a2');
    expect(second.gos(restored)).toEqual(['a4']);
    // a3 was granted 20 s before the restart: it times out 40 s after it.
    clock.advance(39_999);
    expect(second.hosts().a3).toBe('updating');
    clock.advance(1);
    expect(second.hosts().a3).toBe('timed-out');
    expect(second.gos(restored)).toEqual(['a4', 'a5']);
    second.finish('a4');
    second.finish('a5');
    expect(second.snapshot()).toMatchObject({ status: 'failed', reason: '1 of 5 hosts failed' });
    await second.stop();

    // Frozen environments survive a restart too.
    const third = await startHub(defaults, { db, clock });
    third.control('f1', { op: 'freeze', env: 'prod' });
    await third.stop();
    const fourth = await startHub(defaults, { db, clock });
    expect(JSON.parse(fourth.sent.find((s) => s.topic === ROLLOUT_SETTINGS)!.payload)).toMatchObject({ frozen: ['prod'] });
    await fourth.stop();
  });

  it('killed (no stop) and started again, resumes from the host rows and numbers its events on', async () => {
    const db = new Database(':memory:');
    const defaults = { batchSize: 2, canary: 0, maxUnavailable: 2, failureThreshold: 3 };
    const first = await startHub(defaults, { db });
    first.agents(ids(4));
    first.push();
    for (const a of ids(4)) first.register(a);
    first.finish('a1');
    const before = first.events();
    expect(before.map((e) => e.seq)).toEqual(before.map((_, i) => i + 1));
    // A fresh clock: the killed hub's timers never run.
    const second = await startHub(defaults, { db, clock: new ManualClock(first.clock.time) });
    expect(second.hosts()).toEqual({ a1: 'succeeded', a2: 'updating', a3: 'updating', a4: 'queued' });
    expect(second.snapshot()!.seq).toBe(before.length);
    second.agents(ids(4));
    second.finish('a2');
    expect(second.events()[0]!.seq).toBe(before.length + 1);
    expect(second.hosts()).toMatchObject({ a2: 'succeeded', a4: 'updating' });
    await second.stop();
  });

  it('counts a host the semaphore granted before the hub died, whose row still says queued, as updating; its result counts', async () => {
    const db = new Database(':memory:');
    const defaults = { batchSize: 1, canary: 0, maxUnavailable: 1 };
    const first = await startHub(defaults, { db });
    first.agents(ids(2));
    first.push();
    for (const a of ids(2)) first.register(a);
    expect(first.gos()).toEqual(['a1']);
    // The semaphore stores and publishes the grant before the rollout writes the host's row: killed in between.
    db.prepare(`UPDATE rollout_hosts SET state = 'queued', host = json_set(host, '$.state', 'queued', '$.startedAt', NULL) WHERE agent = 'a1'`).run();
    const second = await startHub(defaults, { db, clock: new ManualClock(first.clock.time) });
    expect(second.hosts()).toEqual({ a1: 'updating', a2: 'queued' });
    second.agents(ids(2));
    second.finish('a1');
    expect(second.hosts()).toEqual({ a1: 'succeeded', a2: 'updating' });
    second.finish('a2');
    expect(second.snapshot()).toMatchObject({ status: 'succeeded' });
    await second.stop();
  });

  it('rewrites the retained snapshot at most every snapshotIntervalMs, at once on a status change; the events carry every change', async () => {
    const hub = await startHub({ batchSize: 3, canary: 0, maxUnavailable: 3 }, { config: { snapshotIntervalMs: 250 } });
    const states = () => hub.sent.filter((m) => m.topic === rolloutStateTopic(ID) && m.payload).map((m) => JSON.parse(m.payload) as RolloutSnapshot);
    hub.agents(ids(6));
    hub.push();
    expect(states()).toHaveLength(1);
    for (const a of ids(6)) hub.register(a);
    hub.finish('a1');
    hub.finish('a2');
    expect(states()).toHaveLength(1);
    hub.clock.advance(250);
    expect(states()).toHaveLength(2);
    expect(states()[1]!.seq).toBe(hub.events().at(-1)!.seq);
    for (const a of ['a3', 'a4', 'a5']) hub.finish(a);
    hub.clock.advance(100);
    hub.finish('a6');
    // succeeded: published at once, 100 ms after the last one.
    expect(states()).toHaveLength(3);
    expect(states()[2]).toMatchObject({ status: 'succeeded', counts: { succeeded: 6 } });
    let replay = states()[0]!;
    for (const e of hub.events()) replay = applyRolloutEvent(replay, e);
    expect(replay).toEqual(states()[2]);
    hub.clock.advance(1000);
    expect(states()).toHaveLength(3);
  });

  it('leaves the hosts out of a snapshot past snapshotMaxBytes, with their counts', async () => {
    const hub = await startHub({ batchSize: 2, canary: 0 }, { config: { snapshotMaxBytes: 1500 } });
    hub.agents(ids(12));
    hub.push();
    expect(hub.snapshot()).toMatchObject({ hosts: [], hostsOmitted: 12, counts: { pending: 12 }, status: 'running' });
    const small = await startHub({ batchSize: 2, canary: 0 }, { config: { snapshotMaxBytes: 1500 } });
    small.agents(ids(2));
    small.push();
    expect(small.snapshot()).toMatchObject({ hostsOmitted: 0, counts: { pending: 2 } });
    expect(small.snapshot()!.hosts).toHaveLength(2);
  });

  it('keeps `history` rollouts and clears the retained state of older ones', async () => {
    const hub = await startHub({ batchSize: 1, canary: 0 }, { config: { history: 1 } });
    hub.agents(ids(1));
    hub.push(SHA);
    hub.clock.advance(1000);
    hub.push(SHA2);
    expect(hub.sent.filter((s) => s.topic === rolloutStateTopic(ID)).at(-1)).toEqual({ topic: rolloutStateTopic(ID), payload: '', retain: true });
    expect(hub.control('l', { op: 'list' }).rollouts!.map((r) => r.id)).toEqual([rolloutId('web', 'prod', SHA2)]);
    await hub.stop();
  });

  it('plans a push it missed from the retained head when an agent waits for it', async () => {
    const older = 'c'.repeat(40);
    const hub = await startHub({ batchSize: 2, canary: 0 }, { heads: [{ payload: JSON.stringify(pushMessage(SHA, T0)) }] });
    hub.agents(ids(2));
    // No push message: the hub was down when it was published. a1 waits for it anyway.
    hub.register('a1');
    expect(hub.snapshot()).toMatchObject({ status: 'running', sha: SHA, hosts: [{ agent: 'a1', state: 'updating' }, { agent: 'a2', state: 'pending' }] });
    expect(hub.gos()).toEqual(['a1']);
    // A SHA that is no ref's newest head is never revived.
    hub.register('a2', older);
    expect(hub.snapshot(rolloutId('web', 'prod', older))).toBeNull();
    expect(hub.gos()).toEqual(['a1']);
  });

  it('sends hosts away from the channel of a rollout it never learns of, after unknownRolloutWait, also across a restart', async () => {
    const made = 'd'.repeat(40);
    const hub = await startHub({ hostTimeout: 3600 }, { config: { unknownRolloutWait: 60 } });
    hub.agents(['a1', 'a2']);
    hub.register('a1', made);
    hub.clock.advance(30_000);
    hub.register('a2', made);
    // A host that registers before a push the hub then gets is not sent away.
    hub.register('a1');
    hub.push();
    hub.clock.advance(30_000);
    expect(hub.expired()).toEqual([['a1', 'cancelled']]);
    hub.clock.advance(30_000);
    expect(hub.expired()).toEqual([['a1', 'cancelled'], ['a2', 'cancelled']]);
    expect(hub.hosts()).toMatchObject({ a1: 'updating' });

    // Restored from the store after a restart, a waiter of an unknown rollout is sent away too.
    hub.register('a2', 'e'.repeat(40));
    await hub.stop();
    const again = await startHub({ hostTimeout: 3600 }, { db: hub.db, clock: hub.clock, config: { unknownRolloutWait: 60 } });
    // (At start it publishes again the expiries it keeps.)
    const mark = again.sent.length;
    again.clock.advance(60_000);
    expect(again.expired(mark)).toEqual([['a2', 'cancelled']]);
  });
});

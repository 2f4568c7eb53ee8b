import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/shared/contract/orchestrator-messages.js';
import type { RolloutSnapshot } from '../../src/shared/contract/rollout-messages.js';
import { SCHEMA_VERSION, type PushMessage } from '../../src/shared/messages.js';
import { agentHeartbeatTopic, agentStatusTopic, appStateTopic, headTopic } from '../../src/shared/topics.js';
import { appRows, followedRef } from '../../src/hub/views/apps-view.js';
import { deliveryRecord, DeliveryView, type DeliveryRecord } from '../../src/hub/views/delivery-view.js';
import { FleetView } from '../../src/hub/views/fleet-view.js';
import { HeadView } from '../../src/hub/views/head-view.js';
import { PlaybookRunsView } from '../../src/hub/views/playbook-runs-view.js';
import { rolloutDetail, rolloutSummary } from '../../src/hub/views/rollout-rows.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const at = new Date(0).toISOString();
const json = (v: object) => Buffer.from(JSON.stringify(v));
const status = (agent: string, state: 'online' | 'offline', labels: Record<string, string> = {}) =>
  json({ v: SCHEMA_VERSION, agent, state, labels, version: '1.2.3', startedAt: at, at });
const heartbeat = (agent: string) =>
  json({ v: SCHEMA_VERSION, agent, at, host: { hostname: `${agent}.lan`, os: 'linux', kernel: '6.1', arch: 'x64', cpuLoadPercent: 3, loadAvg: [0.1, 0.2, 0.3], memTotalBytes: 100, memUsedBytes: 40, uptimeSeconds: 9 } });
const appState = (agent: string, app: string, sha: string, extra: object = {}) =>
  json({ v: SCHEMA_VERSION, agent, app, repo: 'acme/web', ref: 'refs/heads/main', state: 'deployed', sha, targetSha: sha, lastError: null, durations: {}, updatedAt: at, follows: { kind: 'branch', pattern: 'main' }, ...extra });
const push = (ref: string, sha: string, extra: Partial<PushMessage> = {}): PushMessage => ({
  v: SCHEMA_VERSION, deliveryId: `d-${sha.slice(0, 4)}`, source: 'github', repo: 'acme/web', ref, refType: 'branch', branch: ref.replace('refs/heads/', ''), tag: null,
  before: '0'.repeat(40), after: sha, created: false, deleted: false, forced: false, pusher: { name: 'ada', email: null }, headCommit: null, cloneUrl: 'x', receivedAt: at, ...extra,
});
const unbounded = () => true;

function fleetOf(): FleetView {
  const fleet = new FleetView(unbounded);
  fleet.take(agentStatusTopic('web-1'), status('web-1', 'online', { env: 'production', zone: 'a' }));
  fleet.take(agentHeartbeatTopic('web-1'), heartbeat('web-1'));
  fleet.take(appStateTopic('web-1', 'web'), appState('web-1', 'web', A));
  fleet.take(agentStatusTopic('web-2'), status('web-2', 'offline', { env: 'production', zone: 'b' }));
  fleet.take(appStateTopic('web-2', 'web'), appState('web-2', 'web', B, { state: 'failed', lastError: { step: 'health', message: 'HTTP 500', outputTail: '' } }));
  fleet.take(agentStatusTopic('stage-1'), status('stage-1', 'online', { env: 'staging' }));
  return fleet;
}

describe('FleetView', () => {
  it('shows each agent with its status, host facts, last heartbeat and apps', () => {
    const row = fleetOf().get('web-1')!;
    expect(row).toMatchObject({ id: 'web-1', online: true, version: '1.2.3', labels: { env: 'production', zone: 'a' }, lastHeartbeat: at, hostFacts: { hostname: 'web-1.lan', arch: 'x64' } });
    expect(row.apps).toEqual([expect.objectContaining({ app: 'web', sha: A, state: 'deployed' })]);
    expect(row.apps[0]).not.toHaveProperty('v');
  });

  it('filters by online and labels and pages by id', () => {
    const fleet = fleetOf();
    expect(fleet.list({}, { offset: 0, limit: 50 }).items.map((a) => a.id)).toEqual(['stage-1', 'web-1', 'web-2']);
    expect(fleet.list({ online: false }, { offset: 0, limit: 50 }).items.map((a) => a.id)).toEqual(['web-2']);
    expect(fleet.list({ labels: { env: 'production', zone: 'b' } }, { offset: 0, limit: 50 }).items.map((a) => a.id)).toEqual(['web-2']);
    expect(fleet.list({}, { offset: 1, limit: 1 })).toMatchObject({ total: 3, offset: 1, limit: 1, items: [{ id: 'web-1' }] });
  });

  it('skips malformed payloads, clears an app on an empty one, and keeps to its bound', () => {
    const fleet = new FleetView((table, size) => table !== 'agents' || size < 1);
    fleet.take(agentStatusTopic('a1'), status('a1', 'online'));
    fleet.take(appStateTopic('a1', 'web'), appState('a1', 'web', A));
    fleet.take(appStateTopic('a1', 'web'), Buffer.from('{not json'));
    expect(fleet.get('a1')!.apps).toHaveLength(1);
    fleet.take(appStateTopic('a1', 'web'), Buffer.alloc(0));
    expect(fleet.get('a1')!.apps).toEqual([]);
    expect(fleet.take(agentStatusTopic('a2'), status('a2', 'online'))).toBeUndefined();
    expect(fleet.size).toBe(1);
  });
});

describe('HeadView and appRows', () => {
  it('says per host whether it runs the head of the branch it follows, per environment', () => {
    const heads = new HeadView(10);
    heads.take(headTopic('acme/web', 'refs/heads/main'), push('refs/heads/main', A));
    const rows = appRows(fleetOf().entries(), (repo, ref) => heads.get(repo, ref));
    expect(rows).toEqual([
      expect.objectContaining({
        app: 'web', environment: 'production', repo: 'acme/web', branch: 'main', ref: 'refs/heads/main', head: A, onHead: 1, failed: 1,
        hosts: [
          expect.objectContaining({ agent: 'web-1', online: true, sha: A, matchesHead: true, error: null }),
          expect.objectContaining({ agent: 'web-2', online: false, sha: B, matchesHead: false, state: 'failed', error: 'health: HTTP 500' }),
        ],
      }),
    ]);
    expect(appRows(fleetOf().entries(), (repo, ref) => heads.get(repo, ref), { environment: 'staging' })).toEqual([]);
  });

  it('knows no head for a glob, nor for a ref the hub has no head of, nor once the ref is deleted', () => {
    expect(followedRef({ kind: 'branch', pattern: 'release/*' })).toBeNull();
    expect(followedRef({ kind: 'tag', pattern: 'v1.0.0' })).toBe('refs/tags/v1.0.0');
    const heads = new HeadView(10);
    const topic = headTopic('acme/web', 'refs/heads/main');
    heads.take(topic, push('refs/heads/main', A));
    heads.take(topic, push('refs/heads/main', '0'.repeat(40), { deleted: true }));
    expect(heads.get('acme/web', 'refs/heads/main')).toBeUndefined();
    const rows = appRows(fleetOf().entries(), (repo, ref) => heads.get(repo, ref));
    expect(rows[0]).toMatchObject({ head: null, onHead: 0 });
    expect(rows[0]!.hosts.map((h) => h.matchesHead)).toEqual([null, null]);
  });

  it('keeps at most max refs, forgetting the one written longest ago, and takes the head commit of an annotated tag', () => {
    const heads = new HeadView(2);
    for (const [i, sha] of [A, B, 'c'.repeat(40)].entries()) heads.take(headTopic('acme/web', `refs/heads/b${i}`), push(`refs/heads/b${i}`, sha));
    expect(heads.list({ offset: 0, limit: 10 }).items.map((h) => h.ref)).toEqual(['refs/heads/b1', 'refs/heads/b2']);
    heads.take(headTopic('acme/web', 'refs/tags/v1'), push('refs/tags/v1', B, { headCommit: { id: A, message: 'm', timestamp: at, author: { name: 'a', email: null, username: null } } }));
    expect(heads.get('acme/web', 'refs/tags/v1')!.sha).toBe(A);
  });
});

describe('DeliveryView', () => {
  const record = (n: number, result: DeliveryRecord['result']): DeliveryRecord => ({
    at, delivery: `d${n}`, event: 'push', result, status: 200, reason: null, state: null, repo: null, ref: null, sha: null, pusher: null, address: null,
  });

  it('lists the newest first, by result, and forgets the oldest past its bound', () => {
    const view = new DeliveryView(3);
    view.add(record(1, 'accepted'));
    view.add(record(2, 'rejected'));
    expect(view.list({ offset: 0, limit: 10 }).items.map((r) => r.delivery)).toEqual(['d2', 'd1']);
    view.add(record(3, 'duplicate'));
    view.add(record(4, 'rejected'));
    view.add(record(5, 'accepted'));
    expect(view.list({ offset: 0, limit: 10 })).toMatchObject({ total: 3, items: [{ delivery: 'd5' }, { delivery: 'd4' }, { delivery: 'd3' }] });
    expect(view.list({ offset: 0, limit: 10 }, 'rejected').items.map((r) => r.delivery)).toEqual(['d4']);
    expect(view.list({ offset: 1, limit: 1 }).items.map((r) => r.delivery)).toEqual(['d4']);
  });
});

describe('deliveryRecord', () => {
  const when = new Date(0);
  it('tells accepted, duplicate, rejected (with the error the sender got) and ignored apart', () => {
    const p = push('refs/heads/main', A);
    const published = { state: 'published' as const, duplicate: false, topic: 'github/acme/web' };
    expect(deliveryRecord({ status: 200, verified: true, delivery: 'g1', event: 'push', push: p, outcome: published, address: '10.0.0.1' }, when)).toMatchObject({
      result: 'accepted', state: 'published', repo: 'acme/web', ref: 'refs/heads/main', sha: A, pusher: 'ada', address: '10.0.0.1', reason: null,
    });
    expect(deliveryRecord({ status: 202, verified: true, delivery: 'g1', event: 'push', push: p, outcome: { ...published, state: 'in-doubt', duplicate: true } }, when)).toMatchObject({ result: 'duplicate', state: 'in-doubt' });
    expect(deliveryRecord({ status: 401, verified: false, delivery: 'g2', event: 'push', error: 'signature does not match' }, when)).toMatchObject({ result: 'rejected', status: 401, reason: 'signature does not match', repo: null });
    expect(deliveryRecord({ status: 503, verified: true, delivery: 'g3', event: 'push', push: p, outcome: { state: 'not-published', reason: 'x' }, error: 'x: nothing was published' }, when)).toMatchObject({ result: 'rejected', state: null });
    expect(deliveryRecord({ status: 200, verified: true, delivery: 'g4', event: 'ping' }, when)).toMatchObject({ result: 'ignored', reason: 'ping' });
  });
});

describe('PlaybookRunsView', () => {
  const node = { node: 'n1', outcome: 'ok' as const, startedAt: 1000, endedAt: 2000, lateByMs: 1, leadMs: 5, exitCode: 0, signal: null, stoppedBy: null, clockErrorMs: 0.1, clockOffsetMs: 0, outputTail: 'hi', error: null };
  const ev = (e: object) => ({ v: SCHEMA_VERSION, runId: 'r1', ...e }) as RunEvent;

  it('follows a run from its request through its steps to its report', () => {
    const view = new PlaybookRunsView(10, () => 5000);
    view.request({ v: SCHEMA_VERSION, runId: 'r1', file: 'deploy.yml', playbook: 'x', requestedAt: at });
    view.event(ev({ type: 'accepted', steps: ['s1', 's2'] }));
    view.event(ev({ type: 'step', stepId: 's1', status: 'running', nodes: ['n1'], startAt: 1000, error: null }));
    view.event(ev({ type: 'node', stepId: 's1', phase: 'finished', report: node }));
    expect(view.get('r1')).toMatchObject({ status: 'running', file: 'deploy.yml', startedAt: new Date(5000).toISOString(), steps: [{ id: 's1', status: 'running', nodes: [node] }, { id: 's2', status: 'pending' }] });
    expect(view.list({ offset: 0, limit: 10 }).items).toEqual([expect.objectContaining({ runId: 'r1', steps: 2, stepsDone: 0 })]);
    view.event(ev({ type: 'finished', report: { v: SCHEMA_VERSION, runId: 'r1', name: 'deploy', status: 'failed', startedAt: 1000, endedAt: 3000, steps: [{ id: 's1', kind: 'action', action: 'SLEEP', args: [], status: 'failed', startAt: 1000, skewMs: 2, nodes: [node], error: 'n1 failed' }] } }));
    expect(view.get('r1')).toMatchObject({ status: 'failed', name: 'deploy', endedAt: new Date(3000).toISOString(), steps: [{ id: 's1', status: 'failed', error: 'n1 failed', skewMs: 2 }] });
  });

  it('records a rejected run with its error and keeps the newest max runs', () => {
    const view = new PlaybookRunsView(2, () => 0);
    for (const runId of ['r1', 'r2', 'r3']) view.event({ v: SCHEMA_VERSION, type: 'rejected', runId, error: `bad ${runId}` });
    expect(view.list({ offset: 0, limit: 10 }).items.map((r) => [r.runId, r.status, r.error])).toEqual([['r3', 'rejected', 'bad r3'], ['r2', 'rejected', 'bad r2']]);
    expect(view.get('r1')).toBeUndefined();
  });
});

describe('rollout rows', () => {
  const host = (agent: string, state: RolloutSnapshot['hosts'][number]['state'], canary = false, error: string | null = null) =>
    ({ agent, state, canary, fromSha: A, startedAt: null, endedAt: null, error, down: false });
  const snap: RolloutSnapshot = {
    v: SCHEMA_VERSION, id: 'web.production.bbbbbbbbbbbb', app: 'web', env: 'production', repo: 'acme/web', ref: 'refs/heads/main', sha: B, deliveryId: 'd', pusher: 'ada',
    status: 'running', reason: null, policy: { batchSize: 2, canary: 1, maxUnavailable: 2, hostTimeout: 60, failureThreshold: 2, onAbort: 'stop' },
    hosts: [host('c1', 'succeeded', true), host('h1', 'updating'), host('h2', 'failed', false, 'health: HTTP 500'), host('h3', 'queued')],
    createdAt: at, updatedAt: at, endedAt: null, seq: 7, hostsOmitted: 0,
  };

  it('groups hosts into the canary batch and the wave, with progress and each failure\'s reason', () => {
    const d = rolloutDetail(snap);
    expect(d.batches).toEqual([
      { name: 'canary', size: 1, counts: { succeeded: 1 }, done: 1 },
      { name: 'wave', size: 3, counts: { updating: 1, failed: 1, queued: 1 }, done: 1 },
    ]);
    expect(d.progress).toEqual({ hosts: 4, done: 2, succeeded: 1, failed: 1 });
    expect(d.hosts.find((h) => h.agent === 'h2')!.error).toBe('health: HTTP 500');
  });

  it('summarises a history row from its counts alone', () => {
    const s = rolloutSummary({ ...snap, hosts: [], counts: { succeeded: 3, 'timed-out': 1, updating: 2 } });
    expect(s).not.toHaveProperty('hosts');
    expect(s.progress).toEqual({ hosts: 6, done: 4, succeeded: 3, failed: 1 });
  });
});

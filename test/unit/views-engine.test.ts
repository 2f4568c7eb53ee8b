import { describe, expect, it } from 'vitest';
import type { EngineContext } from '../../src/hub/engines/engine.js';
import type { HubChange } from '../../src/hub/hub-events.js';
import { ViewsEngine } from '../../src/hub/views/views-engine.js';
import { SCHEMA_VERSION } from '../../src/shared/messages.js';
import { createLogger } from '../../src/shared/logger.js';
import { agentStatusTopic, appStateTopic, headTopic, HUB_STATUS, runEventsTopic } from '../../src/shared/topics.js';
import type { PushMessage } from '../../src/shared/messages.js';
import { ManualClock } from '../support/manual-clock.js';

const at = new Date(0).toISOString();
const json = (v: object) => Buffer.from(JSON.stringify(v));

function engine(limits?: ConstructorParameters<typeof ViewsEngine>[4], stored: { topic: string; payload: string }[] = []) {
  const changes: HubChange[] = [];
  const ctx = { clock: new ManualClock(), log: createLogger('test', 'silent') } as unknown as EngineContext;
  const views = new ViewsEngine(ctx, (area, id) => changes.push(id === undefined ? { area } : { area, id }), { list: () => stored }, undefined, limits);
  return { views, changes };
}

describe('ViewsEngine', () => {
  it('files what it hears by topic and announces each change by area and id', () => {
    const { views, changes } = engine();
    views.handle(agentStatusTopic('a1'), json({ v: SCHEMA_VERSION, agent: 'a1', state: 'online', labels: {}, version: '1', startedAt: at, at }));
    // An app named like another kind of topic's last level is still an app.
    views.handle(appStateTopic('a1', 'events'), json({ v: SCHEMA_VERSION, agent: 'a1', app: 'events', repo: 'acme/web', ref: null, state: 'idle', sha: null, targetSha: null, lastError: null, durations: {}, updatedAt: at }));
    views.handle(HUB_STATUS, json({ v: SCHEMA_VERSION, state: 'online', version: '1', startedAt: at, at }));
    views.handle(runEventsTopic('r1'), json({ v: SCHEMA_VERSION, type: 'rejected', runId: 'r1', error: 'no such playbook' }));
    views.delivered({ at, delivery: 'd1', event: 'push', result: 'rejected', status: 401, reason: 'bad', state: null, repo: null, ref: null, sha: null, pusher: null, address: null });
    expect(changes).toEqual([{ area: 'agents', id: 'a1' }, { area: 'agents', id: 'a1' }, { area: 'apps', id: 'events' }, { area: 'playbooks', id: 'r1' }, { area: 'deliveries', id: 'd1' }]);
    expect(views.fleet.get('a1')!.apps.map((a) => a.app)).toEqual(['events']);
    expect(views.hub?.state).toBe('online');
    expect(views.playbooks.get('r1')?.status).toBe('rejected');
  });

  it('keeps nothing of a malformed message, and announces no agent past its bound', () => {
    const { views, changes } = engine({ agents: 1, appsPerAgent: 1, heads: 1, deliveries: 1, playbookRuns: 1 });
    views.handle(runEventsTopic('r1'), Buffer.from('nope'));
    views.handle(HUB_STATUS, Buffer.from('[]'));
    expect(changes).toEqual([]);
    views.handle(agentStatusTopic('a1'), Buffer.from('{"v":1'));
    expect(views.fleet.size).toBe(0);
    changes.length = 0;
    const status = (agent: string) => json({ v: SCHEMA_VERSION, agent, state: 'online', labels: {}, version: '1', startedAt: at, at });
    views.handle(agentStatusTopic('a1'), status('a1'));
    views.handle(agentStatusTopic('a2'), status('a2'));
    expect(changes).toEqual([{ area: 'agents', id: 'a1' }]);
    expect(views.fleet.size).toBe(1);
  });

  it('knows the heads the hub stored before it started, and each one it publishes', async () => {
    const push = (sha: string, deleted = false): PushMessage => ({
      v: SCHEMA_VERSION, deliveryId: `d-${sha[0]}`, source: 'github', repo: 'acme/web', ref: 'refs/heads/main', refType: 'branch', branch: 'main', tag: null,
      before: '0'.repeat(40), after: sha, created: false, deleted, forced: false, pusher: { name: 'ada', email: null }, headCommit: null, cloneUrl: 'x', receivedAt: at,
    });
    const topic = headTopic('acme/web', 'refs/heads/main');
    const { views, changes } = engine(undefined, [{ topic, payload: JSON.stringify(push('a'.repeat(40))) }, { topic: headTopic('acme/web', 'refs/heads/x'), payload: 'not json' }]);
    await views.start();
    expect(views.heads.list({ offset: 0, limit: 10 }).items.map((h) => [h.ref, h.sha])).toEqual([['refs/heads/main', 'a'.repeat(40)]]);
    views.headPublished(push('b'.repeat(40)));
    expect(views.heads.get('acme/web', 'refs/heads/main')!.sha).toBe('b'.repeat(40));
    views.headPublished(push('0'.repeat(40), true));
    expect(views.heads.get('acme/web', 'refs/heads/main')).toBeUndefined();
    expect(changes).toEqual([{ area: 'apps' }, { area: 'apps' }]);
  });
});

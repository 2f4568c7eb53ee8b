import { describe, expect, it } from 'vitest';
import { batchesOf, planPush, type PushFacts } from '../../src/hub/engines/rollouts/plan.js';
import { BUILTIN_POLICY, resolveCount, resolvePolicy } from '../../src/hub/engines/rollouts/policy.js';
import { emptySnapshot, type FleetSnapshot } from '../../src/shared/fleet.js';
import { SCHEMA_VERSION, type AppState } from '../../src/shared/messages.js';
import { type RolloutPolicyRule } from '../../src/shared/contract/rollout-messages.js';

const SHA = 'a'.repeat(40);
const OLD = 'b'.repeat(40);
const PIN = 'c'.repeat(40);
const AT = new Date(0).toISOString();
const NO_SETTINGS = { defaults: {}, policies: [], frozen: [] };

type AppSpec = Partial<AppState> & { app: string };
type AgentSpec = { env?: string; state?: 'online' | 'offline'; status?: false; apps: AppSpec[] };

/** A fleet as the hub collects it from retained status and app-state messages. */
function fleet(agents: Record<string, AgentSpec>): FleetSnapshot {
  const snap = emptySnapshot();
  for (const [agent, spec] of Object.entries(agents)) {
    const apps = new Map<string, AppState>();
    for (const a of spec.apps) {
      apps.set(a.app, {
        v: SCHEMA_VERSION, agent, repo: 'acme/web', ref: 'refs/heads/main', state: 'deployed', sha: OLD, targetSha: null, lastError: null,
        durations: {}, updatedAt: AT, follows: { kind: 'branch', pattern: 'main' }, rollout: true, pinnedSha: null, deliveryId: null, retrying: null, interrupted: null, refusedHead: null, retryRequest: null, refused: null, ...a,
      });
    }
    const labels: Record<string, string> = spec.env ? { env: spec.env } : {};
    const status = spec.status === false ? undefined : { v: SCHEMA_VERSION as typeof SCHEMA_VERSION, agent, state: spec.state ?? 'online', labels, version: '0.1.0', startedAt: null, at: AT };
    snap.agents.set(agent, { apps, ...(status && { status }) });
  }
  return snap;
}

function push(over: Partial<PushFacts> = {}): PushFacts {
  return { repo: 'acme/web', ref: 'refs/heads/main', branch: 'main', tag: null, deleted: false, after: SHA, headCommit: null, ...over };
}

describe('planPush', () => {
  it('groups targets into one rollout per app × environment (env label, "default" without one)', () => {
    const plan = planPush(
      fleet({
        p2: { env: 'production', apps: [{ app: 'web' }, { app: 'api' }] },
        p1: { env: 'production', apps: [{ app: 'web', sha: null }] },
        s1: { env: 'staging', apps: [{ app: 'web' }] },
        d1: { apps: [{ app: 'web' }] },
      }),
      push(),
      NO_SETTINGS,
    );
    expect(plan.sha).toBe(SHA);
    expect(plan.excluded).toEqual([]);
    expect(plan.immediate).toEqual([]);
    expect(plan.rollouts.map((r) => [r.id, r.targets])).toEqual([
      ['web.default.aaaaaaaaaaaa', [{ agent: 'd1', fromSha: OLD }]],
      ['web.production.aaaaaaaaaaaa', [{ agent: 'p1', fromSha: null }, { agent: 'p2', fromSha: OLD }]],
      ['api.production.aaaaaaaaaaaa', [{ agent: 'p2', fromSha: OLD }]],
      ['web.staging.aaaaaaaaaaaa', [{ agent: 's1', fromSha: OLD }]],
    ]);
    expect(plan.rollouts[1]).toMatchObject({ app: 'web', env: 'production', sha: SHA, frozen: false });
  });

  it('says why every other host or app is left out', () => {
    const plan = planPush(
      fleet({
        a1: { env: 'production', state: 'offline', apps: [{ app: 'web' }] },
        a2: { env: 'production', apps: [{ app: 'web', follows: { kind: 'branch', pattern: 'release/*' } }] },
        a3: { env: 'production', apps: [{ app: 'web', pinnedSha: PIN }] },
        a4: { env: 'production', apps: [{ app: 'web', sha: SHA }] },
        a5: { env: 'production', apps: [{ app: 'docs', repo: 'acme/docs' }] },
        a6: { env: 'production', apps: [{ app: 'web', follows: null }] },
        a7: { env: 'production', apps: [{ app: 'web', follows: { kind: 'tag', pattern: 'v*' } }] },
        a8: { env: 'production', status: false, apps: [{ app: 'web' }] },
        a9: { env: 'production', apps: [] },
      }),
      push(),
      NO_SETTINGS,
    );
    expect(plan.rollouts).toEqual([]);
    expect(plan.excluded).toEqual([
      { agent: 'a1', app: null, reason: 'offline: it converges on the newest push when it comes back' },
      { agent: 'a2', app: 'web', reason: 'follows branch "release/*", not main' },
      { agent: 'a3', app: 'web', reason: 'pinned to cccccccc' },
      { agent: 'a4', app: 'web', reason: 'already on aaaaaaaa' },
      { agent: 'a5', app: null, reason: 'no app follows acme/web' },
      { agent: 'a6', app: 'web', reason: 'its agent does not say what it follows (older agent)' },
      { agent: 'a7', app: 'web', reason: 'follows tag "v*", not main' },
      { agent: 'a8', app: null, reason: 'offline: it converges on the newest push when it comes back' },
      { agent: 'a9', app: null, reason: 'no app follows acme/web' },
    ]);
  });

  it('plans nothing for a deleted ref', () => {
    const plan = planPush(fleet({ a1: { apps: [{ app: 'web' }, { app: 'api' }] } }), push({ deleted: true, after: '0'.repeat(40) }), NO_SETTINGS);
    expect(plan.rollouts).toEqual([]);
    expect(plan.excluded).toEqual([
      { agent: 'a1', app: 'web', reason: 'main was deleted: nothing to deploy' },
      { agent: 'a1', app: 'api', reason: 'main was deleted: nothing to deploy' },
    ]);
  });

  it('lists apps without rollout: true as immediate', () => {
    const plan = planPush(fleet({ a1: { apps: [{ app: 'web', rollout: false }, { app: 'api' }] }, a2: { apps: [{ app: 'web', rollout: false }] } }), push(), NO_SETTINGS);
    expect(plan.immediate).toEqual([
      { agent: 'a1', app: 'web' },
      { agent: 'a2', app: 'web' },
    ]);
    expect(plan.rollouts.map((r) => r.id)).toEqual(['api.default.aaaaaaaaaaaa']);
  });

  it('flags rollouts in a frozen environment', () => {
    const plan = planPush(fleet({ p: { env: 'production', apps: [{ app: 'web' }] }, s: { env: 'staging', apps: [{ app: 'web' }] } }), push(), { ...NO_SETTINGS, frozen: ['production'] });
    expect(plan.rollouts.map((r) => [r.env, r.frozen])).toEqual([
      ['production', true],
      ['staging', false],
    ]);
  });

  it('matches tag globs and deploys an annotated tag’s commit', () => {
    const commit = 'd'.repeat(40);
    const headCommit = { id: commit, message: 'v1.2.0', timestamp: AT, author: { name: 'a', email: null, username: null } };
    const plan = planPush(
      fleet({ a1: { apps: [{ app: 'web', follows: { kind: 'tag', pattern: 'v*' } }] }, a2: { apps: [{ app: 'web' }] } }),
      push({ ref: 'refs/tags/v1.2.0', branch: null, tag: 'v1.2.0', after: SHA, headCommit }),
      NO_SETTINGS,
    );
    expect(plan.sha).toBe(commit);
    expect(plan.rollouts.map((r) => [r.id, r.targets.map((t) => t.agent)])).toEqual([['web.default.dddddddddddd', ['a1']]]);
    expect(plan.excluded).toEqual([{ agent: 'a2', app: 'web', reason: 'follows branch "main", not v1.2.0' }]);
  });

  it('resolves each rollout’s policy against its own host count', () => {
    const agents: Record<string, AgentSpec> = {};
    for (let i = 0; i < 10; i++) agents[`p${i}`] = { env: 'production', apps: [{ app: 'web' }, { app: 'api' }] };
    for (let i = 0; i < 4; i++) agents[`s${i}`] = { env: 'sandbox', apps: [{ app: 'web' }] };
    const policies: RolloutPolicyRule[] = [
      { env: 'prod*', batchSize: '20%', maxUnavailable: 1 },
      { app: 'web*', env: 'production', hostTimeout: 600, onAbort: 'rollback', failureThreshold: '10%' },
      { env: 'sandbox', canary: 0, batchSize: '100%' },
    ];
    const plan = planPush(fleet(agents), push(), { defaults: { canary: 2 }, policies, frozen: [] });
    const byId = Object.fromEntries(plan.rollouts.map((r) => [r.id, r.policy]));
    expect(byId['web.production.aaaaaaaaaaaa']).toEqual({ batchSize: 2, canary: 2, maxUnavailable: 1, hostTimeout: 600, failureThreshold: 1, onAbort: 'rollback' });
    expect(byId['api.production.aaaaaaaaaaaa']).toEqual({ batchSize: 2, canary: 2, maxUnavailable: 1, hostTimeout: 900, failureThreshold: 1, onAbort: 'stop' });
    expect(byId['web.sandbox.aaaaaaaaaaaa']).toEqual({ batchSize: 4, canary: 0, maxUnavailable: 4, hostTimeout: 900, failureThreshold: 1, onAbort: 'stop' });
  });
});

describe('resolveCount', () => {
  it('takes counts as they are and rounds percentages up, between 1 and the host count', () => {
    expect(resolveCount(3, 10)).toBe(3);
    expect(resolveCount(50, 10)).toBe(10);
    expect(resolveCount(0, 10)).toBe(1);
    expect(resolveCount('25%', 10)).toBe(3);
    expect(resolveCount('10%', 10)).toBe(1);
    expect(resolveCount('1%', 250)).toBe(3);
    expect(resolveCount('100%', 7)).toBe(7);
    expect(resolveCount('12.5%', 16)).toBe(2);
    expect(resolveCount('10%', 0)).toBe(1);
    expect(resolveCount(5, 0)).toBe(5);
  });
});

describe('resolvePolicy', () => {
  it('is the built-in policy without configuration: 25%, one canary, maxUnavailable = batch size', () => {
    expect(BUILTIN_POLICY).toMatchObject({ batchSize: '25%', canary: 1, failureThreshold: 1, onAbort: 'stop' });
    expect(resolvePolicy({ defaults: {}, policies: [] }, 'web', 'production', 8)).toEqual({ batchSize: 2, canary: 1, maxUnavailable: 2, hostTimeout: 900, failureThreshold: 1, onAbort: 'stop' });
  });

  it('never asks for more canaries than hosts', () => {
    expect(resolvePolicy({ defaults: { canary: 3 }, policies: [] }, 'web', 'x', 2).canary).toBe(2);
  });

  it('applies defaults, then every matching rule in order, later keys winning', () => {
    const policies: RolloutPolicyRule[] = [
      { batchSize: 5, failureThreshold: '50%' },
      { app: 'web-*', batchSize: 3 },
      { app: 'web-api', env: 'stag*', batchSize: 1, maxUnavailable: '100%' },
      { app: 'other', batchSize: 9 },
      { env: 'production', batchSize: 8 },
    ];
    const settings = { defaults: { hostTimeout: 30, canary: 0 }, policies };
    expect(resolvePolicy(settings, 'web-api', 'staging', 10)).toEqual({ batchSize: 1, canary: 0, maxUnavailable: 10, hostTimeout: 30, failureThreshold: 5, onAbort: 'stop' });
    expect(resolvePolicy(settings, 'web-ui', 'staging', 10)).toMatchObject({ batchSize: 3, maxUnavailable: 3 });
    expect(resolvePolicy(settings, 'web-api', 'production', 10)).toMatchObject({ batchSize: 8 });
    expect(resolvePolicy(settings, 'db', 'dev', 10)).toMatchObject({ batchSize: 5, failureThreshold: 5 });
  });
});

describe('batchesOf', () => {
  const policy = (p: Partial<ReturnType<typeof resolvePolicy>>) => ({ batchSize: 3, canary: 1, maxUnavailable: 2, hostTimeout: 900, failureThreshold: 1, onAbort: 'stop' as const, ...p });
  const targets = (n: number) => Array.from({ length: n }, (_, i) => ({ agent: `h${i + 1}`, fromSha: null }));

  it('puts the canaries first, then min(batchSize, maxUnavailable) at a time', () => {
    expect(batchesOf({ policy: policy({}), targets: targets(8) })).toEqual([['h1'], ['h2', 'h3'], ['h4', 'h5'], ['h6', 'h7'], ['h8']]);
  });

  it('has no canary round without canaries', () => {
    expect(batchesOf({ policy: policy({ canary: 0, maxUnavailable: 5 }), targets: targets(7) })).toEqual([['h1', 'h2', 'h3'], ['h4', 'h5', 'h6'], ['h7']]);
  });

  it('does not change the plan it is given', () => {
    const t = targets(3);
    batchesOf({ policy: policy({ canary: 2 }), targets: t });
    expect(t).toHaveLength(3);
  });
});

import { SCHEMA_VERSION } from '../../src/shared/messages.js';

/** What a fake agent publishes as its status: online, with `labels`. */
export const fakeStatus = (agent: string, labels: Record<string, string> = {}): Buffer =>
  Buffer.from(JSON.stringify({ v: SCHEMA_VERSION, agent, state: 'online', labels, version: 'x', startedAt: null, at: new Date(0).toISOString() }));

/** What a fake agent publishes as the state of app `name`: acme/web on main, deployed, in a rollout. */
export const fakeAppState = (agent: string, name: string): Buffer =>
  Buffer.from(
    JSON.stringify({
      v: SCHEMA_VERSION, agent, app: name, repo: 'acme/web', ref: 'refs/heads/main', state: 'deployed', sha: 'a'.repeat(40), targetSha: null,
      lastError: null, durations: {}, updatedAt: new Date(0).toISOString(), follows: { kind: 'branch', pattern: 'main' }, rollout: true,
    }),
  );

/** What a fake orchestrator node publishes as its info: action SLEEP, a clock. */
export const fakeNodeInfo = (agent: string): Buffer =>
  Buffer.from(JSON.stringify({ v: SCHEMA_VERSION, agent, seedNode: agent, actions: ['SLEEP'], clock: { offsetMs: 0, rttMs: 0.2, errorMs: 0.1, samples: 8, measuredAt: 0 }, at: 0 }));

import { describe, expect, it } from 'vitest';
import { apiFromFlags } from '../../src/cli/api-request.js';
import { statusDocument } from '../../src/cli/status-document.js';
import { snapshotOfAgents } from '../../src/cli/status-from-api.js';
import { agentRow } from '../../src/hub/views/fleet-view.js';
import { collectAgentMessage, emptySnapshot } from '../../src/shared/fleet.js';
import { SCHEMA_VERSION } from '../../src/shared/messages.js';
import { agentHeartbeatTopic, agentStatusTopic, appStateTopic } from '../../src/shared/topics.js';

const at = new Date(0).toISOString();
const json = (v: object) => Buffer.from(JSON.stringify(v));

describe('status through the API', () => {
  it('rebuilds the very document status prints from the broker', () => {
    const snap = emptySnapshot();
    collectAgentMessage(snap, agentStatusTopic('a1'), json({ v: SCHEMA_VERSION, agent: 'a1', state: 'online', labels: { env: 'prod' }, version: '1.0.0', startedAt: at, at, jobs: { actions: ['x'], maxConcurrent: 1, running: 0 } }));
    collectAgentMessage(snap, agentHeartbeatTopic('a1'), json({ v: SCHEMA_VERSION, agent: 'a1', at, host: { hostname: 'h', os: 'linux', kernel: 'k', arch: 'x64', cpuLoadPercent: 1, loadAvg: [0, 0, 0], memTotalBytes: 2, memUsedBytes: 1, uptimeSeconds: 3 } }));
    collectAgentMessage(snap, appStateTopic('a1', 'web'), json({ v: SCHEMA_VERSION, agent: 'a1', app: 'web', repo: 'acme/web', ref: 'refs/heads/main', state: 'failed', sha: 'a'.repeat(40), targetSha: 'b'.repeat(40), lastError: { step: 'health', message: 'down', outputTail: '' }, durations: { total: 5 }, updatedAt: at }));
    // Only app states: no status and no heartbeat seen.
    collectAgentMessage(snap, appStateTopic('a2', 'db'), json({ v: SCHEMA_VERSION, agent: 'a2', app: 'db', repo: 'acme/db', ref: null, state: 'idle', sha: null, targetSha: null, lastError: null, durations: {}, updatedAt: at }));
    const rows = [...snap.agents].map(([id, entry]) => JSON.parse(JSON.stringify(agentRow(id, entry))));
    expect(JSON.stringify(statusDocument(snapshotOfAgents(rows), undefined))).toBe(JSON.stringify(statusDocument(snap, undefined)));
  });

  it('takes --api with a token from --token or PUSHFLEET_TOKEN, and says what is missing', () => {
    expect(apiFromFlags({}, 5)).toBeUndefined();
    expect(apiFromFlags({ api: 'http://hub:8080', token: 'a:b' }, 5, {})).toMatchObject({ token: 'a:b', timeoutMs: 5000 });
    expect(apiFromFlags({ api: 'http://hub:8080' }, 5, { PUSHFLEET_TOKEN: 'c:d' })?.token).toBe('c:d');
    expect(() => apiFromFlags({ api: 'http://hub:8080' }, 5, {})).toThrow(/PUSHFLEET_TOKEN/);
    expect(() => apiFromFlags({ api: 'hub:8080', token: 'a:b' }, 5, {})).toThrow(/http:\/\/ or https:\/\//);
    expect(() => apiFromFlags({ api: 'not a url', token: 'a:b' }, 5, {})).toThrow(/not a URL/);
  });
});

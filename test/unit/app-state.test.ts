import { describe, expect, it } from 'vitest';
import { describeApp, type RunnerView } from '../../agent/app-state.js';
import { AppConfig } from '../../agent/config.js';
import { emptyJournal, type Journal, type Target } from '../../agent/journal.js';
import { renderStatusTable } from '../../src/cli/status-table.js';
import { emptySnapshot } from '../../src/shared/fleet.js';
import { AppState, decode } from '../../src/shared/messages.js';

const OLD = 'a'.repeat(40);
const NEW = 'b'.repeat(40);
const app = AppConfig.parse({ name: 'web', repo: 'acme/web', branch: 'main', path: '/srv/web', restart: ['true'] });
const shape = { updates: 0, health: false };
const view: RunnerView = { admitting: null, pinnedSha: null, journalError: null, refusedHead: null, retryRequest: null };
const target: Target = { sha: NEW, ref: 'refs/heads/main', deliveryId: 'd1', receivedAt: '2026-01-01T00:00:00.000Z', direct: false, key: 'd1' };
const NOW = Date.parse('2026-01-01T00:01:00Z');
const deployed: Journal = { ...emptyJournal('web', '/srv/web', null), deployed: { sha: OLD, ref: 'refs/heads/main', at: 0 } };
const active = (over: Partial<NonNullable<Journal['active']>> = {}): Journal => ({
  ...deployed,
  active: { target, previousSha: OLD, phase: 'forward', step: 0, attempt: 1, retryAt: null, error: null, failure: null, interrupted: null, startedAt: 0, durations: {}, ...over },
});
const describe_ = (j: Journal, v: Partial<RunnerView> = {}) => describeApp(app, 'node-1', shape, j, { ...view, ...v }, NOW);

describe('describeApp: the state message from the journal', () => {
  it('is idle on a working copy it never deployed, showing the HEAD it found', () => {
    expect(describe_(emptyJournal('web', '/srv/web', OLD))).toMatchObject({ state: 'idle', sha: OLD, targetSha: null });
  });

  it('keeps sha on what was deployed while an update runs, and names the target', () => {
    expect(describe_(active({ step: 2 }))).toMatchObject({ state: 'updating', sha: OLD, targetSha: NEW, deliveryId: 'd1', retrying: null });
  });

  it('says retrying, with the step, the next try and when, after a transient failure', () => {
    const j = active({ attempt: 3, retryAt: NOW + 8000, error: { step: 'fetch', message: 'git fetch timed out after 120 s', outputTail: '' } });
    expect(describe_(j)).toMatchObject({ state: 'retrying', sha: OLD, retrying: { step: 'fetch', attempt: 3, nextAt: '2026-01-01T00:01:08.000Z' }, lastError: { message: 'git fetch timed out after 120 s' } });
  });

  it('shows an interruption while it is redone and after', () => {
    const interrupted = { step: 'update' as const, phase: 'forward' as const, action: 'redo' as const, at: NOW };
    expect(describe_(active({ interrupted }))).toMatchObject({ state: 'updating', interrupted: { step: 'update', action: 'redo', at: '2026-01-01T00:01:00.000Z' } });
    const done: Journal = { ...deployed, deployed: { sha: NEW, ref: 'refs/heads/main', at: 1 }, last: { state: 'deployed', target, error: null, interrupted, durations: {}, at: 1 } };
    expect(describe_(done)).toMatchObject({ state: 'deployed', sha: NEW, interrupted: { action: 'redo' } });
  });

  it('says waiting while a rollout grant is awaited, and held keeps the ref of what runs', () => {
    expect(describe_(deployed, { admitting: target })).toMatchObject({ state: 'waiting', sha: OLD, targetSha: NEW });
    const held: Journal = { ...deployed, deployed: { sha: OLD, ref: 'refs/heads/old', at: 0 }, last: { state: 'held', target, error: null, interrupted: null, durations: {}, at: 1 } };
    expect(describe_(held)).toMatchObject({ state: 'held', sha: OLD, ref: 'refs/heads/old' });
  });

  it('is not deployed once the working copy left the deployed SHA', () => {
    const moved: Journal = { ...deployed, deployed: null, baseline: NEW, last: { state: 'deployed', target: { ...target, sha: OLD }, error: null, interrupted: null, durations: {}, at: 1 } };
    expect(describe_(moved)).toMatchObject({ state: 'idle', sha: NEW });
  });
});

describe('AppState consumers', () => {
  it('decodes a state message from an older agent, without the new fields', () => {
    const old = { v: 1, agent: 'n', app: 'web', repo: 'acme/web', ref: null, state: 'deployed', sha: OLD, targetSha: null, lastError: null, durations: {}, updatedAt: '2026-01-01T00:00:00.000Z' };
    const d = decode(AppState, JSON.stringify(old));
    expect(d.ok && d.value).toMatchObject({ retrying: null, interrupted: null, refusedHead: null, retryRequest: null });
  });

  it('status shows the target and next try of a retrying app, an interruption and a refused head', () => {
    const snap = emptySnapshot();
    const base = describe_(active({ attempt: 2, retryAt: NOW + 30_000, error: { step: 'fetch', message: 'remote down', outputTail: '' } }));
    const refused = { topic: 'pushfleet/heads/acme/web/x', deliveryId: 'x', reason: 'dated 9999-01-01T00:00:00.000Z', at: base.updatedAt };
    const redone = { ...describe_(deployed), app: 'api', interrupted: { step: 'restart' as const, phase: 'forward' as const, action: 'redo' as const, at: base.updatedAt }, refusedHead: refused };
    snap.agents.set('node-1', { apps: new Map([['web', base], ['api', redone]]) });
    const table = renderStatusTable(snap, new Date(NOW));
    expect(table).toMatch(/web\s+main\s+aaaaaaaa→bbbbbbbb\s+retrying \(try 2 in 30s\)\s+0s ago\s+fetch: remote down/);
    expect(table).toMatch(/api\s+main\s+aaaaaaaa\s+deployed \(interrupted at restart, redone\)\s+0s ago\s+refused head: dated 9999/);
  });
});

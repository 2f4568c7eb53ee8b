import { describe, expect, it } from 'vitest';
import { renderRollout } from '../../src/cli/rollout-view.js';
import { RolloutSnapshot } from '../../src/shared/contract/rollout-messages.js';

const AT = '2025-01-01T00:00:00.000Z';
const snap = (over: Partial<RolloutSnapshot>): RolloutSnapshot =>
  RolloutSnapshot.parse({
    v: 1, id: 'web.prod.aaaaaaaaaaaa', app: 'web', env: 'prod', repo: 'acme/web', ref: 'refs/heads/main', sha: 'a'.repeat(40), deliveryId: 'd', pusher: 'ada',
    status: 'running', reason: null, policy: { batchSize: 2, canary: 0, maxUnavailable: 2, hostTimeout: 60, failureThreshold: 1, onAbort: 'stop' },
    hosts: [{ agent: 'h1', state: 'updating', canary: false, fromSha: null, startedAt: AT, endedAt: null, error: null, down: false }],
    createdAt: AT, updatedAt: AT, endedAt: null, ...over,
  });

describe('renderRollout', () => {
  it('lists every host', () => {
    const text = renderRollout(snap({}));
    expect(text).toContain('0 done / 1 updating / 0 waiting');
    expect(text).toMatch(/h1\s+updating/);
  });

  it('shows the counts of a snapshot that left its hosts out, and where their changes are', () => {
    const text = renderRollout(snap({ hosts: [], hostsOmitted: 5000, counts: { succeeded: 4000, updating: 500, pending: 500 } }));
    expect(text).toContain('4000 done / 500 updating / 500 waiting');
    expect(text).toContain('5000 hosts (not listed');
    expect(text).toContain('pushfleet/rollouts/web.prod.aaaaaaaaaaaa/events');
    expect(text).not.toContain('HOST');
  });
});

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ActionConfig } from '../../agent/action-config.js';
import { startAgentServices } from '../../agent/services/agent-services.js';
import type { AgentServiceState, LeaseRenewal } from '../../src/shared/contract/services-messages.js';
import { createLogger } from '../../src/shared/logger.js';
import { Cleanup } from '../support/cleanup.js';
import { waitFor } from '../support/wait.js';

const RECORD = fileURLToPath(new URL('../fixtures/services/record.sh', import.meta.url));

describe('agent services part (supervisor + lease holder, link without MQTT)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('renews, runs what a grant lists, reports states, ignores a malformed grant, and fences a stale generation', async () => {
    const stateDir = cleanup.tempDir('pushfleet-agent-svc-');
    const records = join(stateDir, 'records');
    const renewals: LeaseRenewal[] = [];
    const states: AgentServiceState[] = [];
    const services = startAgentServices(
      { id: 'a1', stateDir, actions: { worker: ActionConfig.parse({ command: [RECORD], env: { RECORDS: records }, stopTimeout: 1 }) }, services: { actions: ['worker'], maxWorkers: 2, stopTimeout: 2 } },
      { renew: (r) => renewals.push(r), report: (s) => states.push(s) },
      createLogger('test', 'silent'),
    );
    cleanup.defer(() => services.stop());
    expect(renewals).toHaveLength(1);
    // services.stopTimeout, not the action's (the jobs' one), is what the hub must wait for.
    expect(services.offer()).toEqual({ actions: { worker: { stopTimeoutMs: 2000 } }, maxWorkers: 2, running: 0 });
    const grant = (seq: number, generation: number) =>
      JSON.stringify({ v: 1, session: renewals[0]!.session, seq, grantedAt: seq, leaseMs: 60_000, renewMs: 100, services: { web: { generation, restarts: 0, action: 'worker', arg: 'q1' } } });
    services.grant('{"v":1,"session":"nope"}');
    services.grant(grant(renewals[0]!.seq, 2));
    await waitFor('web running', () => states.find((s) => s.name === 'web' && s.state === 'running'));
    const lines = () => (existsSync(records) ? readFileSync(records, 'utf8') : '');
    expect(lines()).toMatch(/^start web 2 .* arg=q1 /);
    // The grant's renewMs now paces the renewals.
    await waitFor('renewals every 100 ms', () => renewals.length >= 3);
    expect(renewals.at(-1)!.running).toEqual({ web: 2 });
    // Generation 3 placed on another agent: this copy stops at once and is reported ended.
    services.heard('web', 3);
    const ended = await waitFor('web ended', () => states.find((s) => s.state === 'ended'));
    expect(ended).toMatchObject({ agent: 'a1', name: 'web', generation: 2, reason: 'stopped: superseded by generation 3', code: 0 });
    expect(lines()).toMatch(/\nstop 2\n$/);
    // A late grant of the old generation is refused, never run.
    services.grant(grant(renewals.at(-1)!.seq, 2));
    expect(states.at(-1)).toMatchObject({ name: 'web', generation: 2, state: 'refused', reason: 'generation 2 is older than generation 3 seen here' });
    expect(lines().match(/^start/gm)).toHaveLength(1);
  });
});

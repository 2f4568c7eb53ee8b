import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ActionConfig } from '../../agent/action-config.js';
import { describeGroup, parseStat } from '../../agent/process-group.js';
import { startAgentServices } from '../../agent/services/agent-services.js';
import { CopyGroups } from '../../agent/services/copy-groups.js';
import type { ServiceOutput } from '../../src/shared/contract/services-engine-messages.js';
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
    const outputs: ServiceOutput[] = [];
    let changes = 0;
    const services = await startAgentServices(
      { id: 'a1', stateDir, actions: { worker: ActionConfig.parse({ command: [RECORD], env: { RECORDS: records }, stopTimeout: 1 }) }, services: { actions: ['worker'], maxWorkers: 2, stopTimeout: 2 } },
      { renew: (r) => renewals.push(r), report: (s) => states.push(s), output: (o) => outputs.push(o), changed: () => changes++ },
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
    await waitFor('its start record', () => lines().startsWith('start web 2'));
    expect(lines()).toMatch(/^start web 2 .* arg=q1 /);
    expect(services.offer().running).toBe(1);
    expect(changes).toBe(1);
    // The grant's renewMs now paces the renewals.
    await waitFor('renewals every 100 ms', () => renewals.length >= 3);
    expect(renewals.at(-1)!.running).toEqual({ web: 2 });
    // Generation 3 placed on another agent: this copy stops at once and is reported ended.
    services.heard('web', 3);
    const ended = await waitFor('web ended', () => states.find((s) => s.state === 'ended'));
    expect(ended).toMatchObject({ agent: 'a1', name: 'web', generation: 2, reason: 'stopped: superseded by generation 3', code: 0 });
    expect(lines()).toMatch(/\nstop 2\n$/);
    // Its output's tail, once more at its end.
    expect(outputs.at(-1)).toMatchObject({ agent: 'a1', name: 'web', generation: 2, restarts: 0 });
    expect(outputs.at(-1)!.output.split('\n')).toEqual(expect.arrayContaining(['err web', 'out web 2']));
    expect(changes).toBe(2);
    // A late grant of the old generation is refused, never run.
    services.grant(grant(renewals.at(-1)!.seq, 2));
    expect(states.at(-1)).toMatchObject({ name: 'web', generation: 2, state: 'refused', reason: 'generation 2 is older than generation 3 seen here' });
    expect(lines().match(/^start/gm)).toHaveLength(1);
  });

  it('stops a copy an earlier run of the agent left running, and reports it ended, before it first renews', async () => {
    const stateDir = cleanup.tempDir('pushfleet-agent-svc-');
    // A copy whose agent and guard both died: its group is on record.
    const left = spawn('/bin/sh', ['-c', 'while :; do sleep 0.05; done'], { detached: true, stdio: 'ignore' });
    cleanup.defer(() => {
      try {
        process.kill(-left.pid!, 'SIGKILL');
      } catch {
        // stopped, as it should be
      }
    });
    await new Promise((r) => left.once('spawn', r));
    new CopyGroups(stateDir).put('web', { generation: 4, restarts: 1, group: describeGroup(left.pid!, 'service', '/bin/sh') });
    // Not a zombie (it is this process's child, reaped later).
    const alive = () => {
      try {
        return parseStat(readFileSync(`/proc/${left.pid}/stat`, 'utf8'))?.zombie === false;
      } catch {
        return false;
      }
    };
    const events: string[] = [];
    const services = await startAgentServices(
      { id: 'a1', stateDir, actions: { worker: ActionConfig.parse({ command: [RECORD] }) }, services: { actions: ['worker'], maxWorkers: 1, stopTimeout: 1 } },
      { renew: () => events.push(`renew (left-over alive: ${alive()})`), report: (s) => events.push(`${s.name}@${s.generation}.${s.restarts} ${s.state}: ${s.reason}`), output: () => undefined, changed: () => undefined },
      createLogger('test', 'silent'),
    );
    cleanup.defer(() => services.stop());
    expect(events).toEqual([expect.stringMatching(/^web@4\.1 ended: stopped: the agent restarted: service \(\/bin\/sh, process group \d+, 2 processes\) was still running; terminated \(SIGTERM\)/), 'renew (left-over alive: false)']);
    expect(new CopyGroups(stateDir).recorded().size).toBe(0);
  });
});

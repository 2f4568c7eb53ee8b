import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/hub/audit/audit-entry.js';
import { defaultUsersFile } from '../../src/hub/users/users-file.js';
import { addBrokerUser } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { CLI } from '../support/cli-process.js';
import { hubProcesses } from '../support/hub-process.js';
import { freePort } from '../support/ports.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { runProcess, show } from '../support/run-process.js';
import { SECRET } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const { PUSHFLEET_TOKEN: _token, PUSHFLEET_HUB: _hub, ...cleanEnv } = process.env;
const audit = (args: string[], env: NodeJS.ProcessEnv = {}) => runProcess(process.execPath, [CLI, 'audit', ...args], { env: { ...cleanEnv, ...env } });
const lines = (stdout: string): AuditEntry[] => stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEntry);

describe('pushfleet audit', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('finds every entry whose answer was given after the hub was killed -9, from the state on the machine and through the API', async () => {
    const { start, webhookUrl, config, stateDir } = await hubProcesses(cleanup, 'aedes');
    const alice = `alice:${await addBrokerUser(defaultUsersFile(stateDir), 'alice', 'operator')}`;
    const viewer = `ci-bot:${await addBrokerUser(defaultUsersFile(stateDir), 'ci-bot', 'viewer')}`;
    let hub = await start();
    const hubUrl = new URL(webhookUrl).origin;
    expect((await postWebhook(webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: 'b'.repeat(40) }), 'kept-1'))).status).toBe(200);
    const added = await fetch(`${hubUrl}/api/v1/services`, { method: 'POST', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'kept-svc', action: 'noop' }) });
    expect(added.status).toBe(201);
    // At once after the answer: the entry was committed before it was sent.
    await hub.stop('SIGKILL');

    const local = await audit(['--local', '-c', config]);
    expect(local.code, show(local)).toBe(0);
    expect(lines(local.stdout)).toMatchObject([
      { kind: 'delivery', target: 'kept-1', outcome: 'accepted', who: 'ada' },
      { kind: 'action', via: 'api', action: 'service.add', target: 'kept-svc', who: 'alice', identity: 'token', outcome: 'accepted' },
    ]);

    hub = await start();
    const remote = await waitFor('the restarted hub to answer', async () => {
      const r = await audit(['--hub', hubUrl, '--since', '1h'], { PUSHFLEET_TOKEN: viewer });
      return r.code === 0 && r;
    });
    expect(lines(remote.stdout).map((e) => e.target)).toEqual(['kept-1', 'kept-svc']);
    // On the hub's host its config is enough: its HTTP port and the operator credentials beside its state.
    const onHost = await audit(['-c', config]);
    expect(onHost.code, show(onHost)).toBe(0);
    expect(lines(onHost.stdout)).toHaveLength(2);
    const later = await audit(['--hub', hubUrl, '--since', new Date(Date.now() + 60_000).toISOString()], { PUSHFLEET_TOKEN: viewer });
    expect(later.code, show(later)).toBe(0);
    expect(later.stdout).toBe('');

    const refused = await audit(['--hub', hubUrl], { PUSHFLEET_TOKEN: 'ci-bot:wrong' });
    expect(refused.code, show(refused)).toBe(1);
    expect(refused.stderr).toMatch(/refused GET \/api\/v1\/audit \(401\)/);
    const unreachable = await audit(['--hub', `http://127.0.0.1:${await freePort()}`], { PUSHFLEET_TOKEN: viewer });
    expect(unreachable.code, show(unreachable)).toBe(1);
    expect(unreachable.stderr).toMatch(/cannot reach the hub/);
    const mixed = await audit(['--local', '--hub', hubUrl]);
    expect(mixed.code).toBe(2);
    const badSince = await audit(['--local', '-c', config, '--since', 'last tuesday']);
    expect(badSince.code).toBe(2);
    expect(badSince.stderr).toMatch(/expected an ISO time/);
    const help = await audit(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes: 0 printed/);
  });

  it('says there is no state database where --local looks, with exit 2', async () => {
    const dir = cleanup.tempDir('pushfleet-audit-none-');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${dir}/hub.yaml`, JSON.stringify({ stateDir: `${dir}/state` }));
    const r = await audit(['--local', '-c', `${dir}/hub.yaml`]);
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toMatch(/cannot read the hub's state database .*hub\.sqlite/);
  });
});

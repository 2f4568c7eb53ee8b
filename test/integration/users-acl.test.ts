import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mosquittoAcl } from '../../src/shared/contract/mosquitto-acl.js';
import { TopicContract } from '../../src/shared/contract/topic-table.js';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('pushfleet users acl', () => {
  it("prints the mosquitto ACL of the users file's accounts, as the topic table grants their roles", async () => {
    const file = join(cleanup.tempDir('pushfleet-users-'), 'users.json');
    const f = ['--users-file', file];
    expect((await runCli(['users', 'acl', ...f])).code).toBe(1);
    for (const [name, role] of [['web-1', 'agent'], ['ci', 'client'], ['ops', 'operator']]) expect((await runCli(['users', 'add', name!, '--role', role!, ...f])).code).toBe(0);
    const out = await runCli(['users', 'acl', ...f, '--seed-root', 'lab']);
    expect(out.code).toBe(0);
    const users = [{ name: 'ci', role: 'client' }, { name: 'ops', role: 'operator' }, { name: 'web-1', role: 'agent' }] as const;
    expect(out.stdout).toBe(mosquittoAcl(new TopicContract({ seedRoot: 'lab' }), users));
    expect(out.stdout).toContain('topic write pushfleet/agents/web-1/status');
    expect(out.stdout).toContain('topic write lab/web-1/STATUS');
  });
});

import { describe, expect, it } from 'vitest';
import { mosquittoAcl, type AclUser } from '../../src/shared/contract/mosquitto-acl.js';
import { TopicContract } from '../../src/shared/contract/topic-table.js';
import * as t from '../../src/shared/topics.js';

const contract = new TopicContract();
/** The users of the shipped example, config/mosquitto/acl. */
const EXAMPLE_USERS: AclUser[] = [
  { name: 'hub', role: 'hub' },
  { name: 'operator', role: 'operator' },
  { name: 'web-1', role: 'agent' },
  { name: 'web-2', role: 'agent' },
  { name: 'ci-runner', role: 'client' },
];

/** The `topic` lines of one user's block, as `access filter`. */
function linesOf(acl: string, user: string): string[] {
  const blocks = acl.split(/^user /m).slice(1);
  const block = blocks.find((b) => b.startsWith(`${user}\n`));
  if (!block) throw new Error(`no block for ${user}`);
  return block.split('\n').filter((l) => l.startsWith('topic ')).map((l) => l.slice('topic '.length));
}

/** mosquitto's match of a topic against an ACL filter (`+` one level, `#` the rest). */
const covers = (filter: string, topic: string) => new RegExp(`^${filter.replace(/[.]/g, '\\.').replace(/\+/g, '[^/]+').replace(/\/#$/, '(/.*)?').replace(/^#$/, '.*')}$`).test(topic);
const may = (acl: string, user: string, access: 'read' | 'write', topic: string) =>
  linesOf(acl, user).some((l) => {
    const [a, f] = l.split(' ') as [string, string];
    return (a === access || a === 'readwrite') && covers(f, topic);
  });

describe('the generated mosquitto ACL', () => {
  const acl = mosquittoAcl(contract, EXAMPLE_USERS);

  it('is the example shipped in config/mosquitto/acl (regenerate with vitest -u)', async () => {
    await expect(acl).toMatchFileSnapshot('../../config/mosquitto/acl');
  });

  it('lets an agent write only under its own id and read its own directives', () => {
    expect(may(acl, 'web-1', 'write', t.agentStatusTopic('web-1'))).toBe(true);
    expect(may(acl, 'web-1', 'write', t.appStateTopic('web-1', 'site'))).toBe(true);
    expect(may(acl, 'web-1', 'write', t.agentStatusTopic('web-2'))).toBe(false);
    expect(may(acl, 'web-1', 'write', t.nodeResultTopic('web-2'))).toBe(false);
    expect(may(acl, 'web-1', 'read', t.agentPinTopic('web-1', 'site'))).toBe(true);
    expect(may(acl, 'web-1', 'read', t.agentPinTopic('web-2', 'site'))).toBe(false);
    expect(may(acl, 'web-1', 'read', t.agentRollbackTopic('web-2'))).toBe(false);
    expect(may(acl, 'web-1', 'read', t.headTopic('acme/web', 'refs/heads/main'))).toBe(true);
    expect(may(acl, 'web-1', 'read', t.semaphoreTopic('coordinosaur', t.rolloutChannel('web.prod.0123456789ab'), 'go', 'web-1'))).toBe(true);
    expect(may(acl, 'web-1', 'read', t.semaphoreTopic('coordinosaur', t.rolloutChannel('web.prod.0123456789ab'), 'go', 'web-2'))).toBe(false);
  });

  it('keeps what only the hub publishes to the hub', () => {
    const hubOnly = [t.headTopic('acme/web', 'refs/heads/main'), t.agentPinTopic('web-1', 'site'), t.agentRollbackTopic('web-1'), t.nodeCommandTopic('web-1'), t.semaphoreTopic('coordinosaur', 'ci', 'go', 'x'), t.rolloutStateTopic('x'), 'elsewhere/x'];
    for (const user of ['operator', 'web-1', 'ci-runner']) for (const topic of hubOnly) expect(may(acl, user, 'write', topic), `${user} ${topic}`).toBe(false);
    for (const topic of hubOnly) expect(may(acl, 'hub', 'write', topic)).toBe(true);
    expect(may(acl, 'web-1', 'write', t.ROLLOUT_CONTROL)).toBe(false);
    expect(may(acl, 'operator', 'write', t.ROLLOUT_CONTROL)).toBe(true);
    expect(may(acl, 'operator', 'read', t.agentStatusTopic('web-2'))).toBe(true);
    expect(may(acl, 'ci-runner', 'read', t.agentStatusTopic('web-2'))).toBe(false);
  });

  it('says in the file what mosquitto cannot enforce', () => {
    expect(acl).toMatch(/# not enforced: semaphore\.finished, semaphore\.aborted: only for the jobs this user registered/);
    expect(acl).toMatch(/# not enforced: semaphore\.register.*only on rollout channels/);
  });

  it('takes the semaphore prefix and seed root of the contract', () => {
    const custom = mosquittoAcl(new TopicContract({ semaphorePrefix: 'locks', seedRoot: 'lab/a' }), [{ name: 'n1', role: 'agent' }]);
    expect(linesOf(custom, 'n1')).toContain('write locks/+/register');
    expect(linesOf(custom, 'n1')).toContain('read lab/a/n1/COMMAND');
  });

  it('refuses names that would break the file or a topic level, and unknown roles', () => {
    expect(() => mosquittoAcl(contract, [{ name: 'a1\ntopic readwrite #', role: 'agent' }])).toThrow(/user name/);
    expect(() => mosquittoAcl(contract, [{ name: '+', role: 'agent' }])).toThrow(/user name/);
    expect(() => mosquittoAcl(contract, [{ name: 'a1', role: 'root' as never }])).toThrow(/unknown role "root"/);
    expect(() => mosquittoAcl(contract, [{ name: 'a1', role: 'agent' }, { name: 'a1', role: 'client' }])).toThrow(/twice/);
  });
});

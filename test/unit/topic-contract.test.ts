import { describe, expect, it } from 'vitest';
import { refusePublish, refuseSubscribe } from '../../src/shared/contract/access.js';
import { ANONYMOUS, type Identity } from '../../src/shared/contract/roles.js';
import { TopicContract } from '../../src/shared/contract/topic-table.js';
import { TopicPattern } from '../../src/shared/contract/topic-pattern.js';
import * as t from '../../src/shared/topics.js';

const contract = new TopicContract();
const agent = (name: string): Identity => ({ name, role: 'agent' });
const operator: Identity = { name: 'operator', role: 'operator' };
const client: Identity = { name: 'ci-runner', role: 'client' };
const hub: Identity = { name: 'hub', role: 'hub' };
const mayPublish = (who: Identity, topic: string) => refusePublish(contract, who, topic) === null;
const mayRead = (who: Identity, filter: string) => refuseSubscribe(contract, who, filter) === null;

describe('topic pattern', () => {
  const p = new TopicPattern('pushfleet/agents/{agent}/pins/{app}');
  it('matches topics of its shape and names their levels', () => {
    expect(p.match('pushfleet/agents/a1/pins/web')).toEqual({ agent: 'a1', app: 'web' });
    expect(p.match('pushfleet/agents/a1/pins')).toBeNull();
    expect(p.match('pushfleet/agents/+/pins/web')).toBeNull();
  });
  it('tells what a filter fixes of each level, or that they are disjoint', () => {
    expect(p.overlap('pushfleet/agents/a1/pins/+')).toMatchObject({ agent: 'a1' });
    expect(typeof p.overlap('pushfleet/#')!.agent).toBe('symbol');
    expect(p.overlap('pushfleet/agents/a1/status')).toBeNull();
    expect(p.overlap('pushfleet/agents/a1/pins/web/#')).not.toBeNull();
    expect(p.overlap('pushfleet/agents/a1/pins/web/more')).toBeNull();
  });
  it('formats and makes filters', () => {
    expect(p.format({ agent: 'a', app: 'b' })).toBe('pushfleet/agents/a/pins/b');
    expect(p.filter({ agent: 'a' })).toBe('pushfleet/agents/a/pins/+');
  });
});

describe('the topic table', () => {
  it('knows every topic the topic builders make', () => {
    const cases: [string, string][] = [
      [t.pushTopic('acme/web'), 'push'],
      [t.headTopic('acme/web', 'refs/heads/release/1.x'), 'head'],
      [t.HUB_STATUS, 'hub.status'],
      [t.syncTopic('mqttjs_0a1b2c3d'), 'sync.marker'],
      [t.agentStatusTopic('a1'), 'agent.status'],
      [t.agentHeartbeatTopic('a1'), 'agent.heartbeat'],
      [t.appStateTopic('a1', 'web'), 'agent.app'],
      [t.agentPinTopic('a1', 'web'), 'agent.pin'],
      [t.agentRollbackTopic('a1'), 'agent.rollback'],
      [t.agentRetryTopic('a1'), 'agent.retry'],
      [t.TIME_REQUEST, 'orchestrator.time-request'],
      [t.timeReplyTopic('a1'), 'orchestrator.time-reply'],
      [t.nodeInfoTopic('a1'), 'orchestrator.node-info'],
      [t.nodeCommandTopic('a1'), 'orchestrator.node-command'],
      [t.nodeResultTopic('a1'), 'orchestrator.node-result'],
      [t.runRequestTopic('r1'), 'orchestrator.run-request'],
      [t.runCancelTopic('r1'), 'orchestrator.run-cancel'],
      [t.runEventsTopic('r1'), 'orchestrator.run-events'],
      [t.seedCommandTopic(t.SEED_DEFAULT_ROOT, 'a1'), 'seed.command'],
      [t.seedStatusTopic(t.SEED_DEFAULT_ROOT, 'a1'), 'seed.status'],
      [t.seedResultTopic(t.SEED_DEFAULT_ROOT, 'a1'), 'seed.result'],
      [t.ROLLOUT_CONTROL, 'rollouts.control'],
      [t.rolloutReplyTopic('q1'), 'rollouts.reply'],
      [t.ROLLOUT_SETTINGS, 'rollouts.settings'],
      [t.rolloutStateTopic('web.prod.0123456789ab'), 'rollouts.state'],
      [t.rolloutEventsTopic('web.prod.0123456789ab'), 'rollouts.events'],
      [t.semaphoreTopic('coordinosaur', 'ci', 'register'), 'semaphore.register'],
      [t.semaphoreTopic('/coordinosaur', 'ci', 'finished'), 'semaphore.finished'],
      [t.semaphoreTopic('coordinosaur', 'ci', 'concurrency/set'), 'semaphore.concurrency'],
      [t.semaphoreTopic('coordinosaur', 'ci', 'go', 'job-1'), 'semaphore.go'],
      [t.semaphoreTopic('coordinosaur', 'ci', 'infos/reply'), 'semaphore.infos-reply'],
      [t.semaphoreRootErrorTopic('coordinosaur'), 'semaphore.route-error'],
    ];
    for (const [topic, name] of cases) expect(contract.lookup(topic)?.spec.name, topic).toBe(name);
  });

  it('signs what makes an agent act, and nothing else', () => {
    const signed = [t.headTopic('acme/web', 'refs/heads/main'), t.agentPinTopic('a1', 'web'), t.agentRollbackTopic('a1'), t.nodeCommandTopic('a1'), t.semaphoreTopic('coordinosaur', t.rolloutChannel('web.prod.0123456789ab'), 'go', 'a1')];
    for (const topic of signed) expect(contract.isSigned(topic), topic).toBe(true);
    const plain = [t.pushTopic('acme/web'), t.appStateTopic('a1', 'web'), t.semaphoreTopic('coordinosaur', 'ci', 'go', 'job-1'), t.ROLLOUT_CONTROL, 'elsewhere/x'];
    for (const topic of plain) expect(contract.isSigned(topic), topic).toBe(false);
  });

  it('takes the semaphore prefix and seed root it is given', () => {
    const c = new TopicContract({ semaphorePrefix: 'locks/sem', seedRoot: 'lab/a' });
    expect(c.lookup('locks/sem/ci/register')?.spec.name).toBe('semaphore.register');
    expect(c.lookup('/locks/sem/ci/register')?.spec.name).toBe('semaphore.register');
    expect(c.lookup('lab/a/n1/COMMAND')?.params).toEqual({ agent: 'n1' });
    expect(c.lookup('coordinosaur/ci/register')).toBeNull();
  });
});

describe('who may publish', () => {
  it('lets an agent publish only under its own id', () => {
    expect(mayPublish(agent('a1'), t.agentStatusTopic('a1'))).toBe(true);
    expect(mayPublish(agent('a1'), t.appStateTopic('a1', 'web'))).toBe(true);
    expect(mayPublish(agent('a1'), t.agentStatusTopic('ghost-1'))).toBe(false);
    expect(mayPublish(agent('a1'), t.nodeResultTopic('a2'))).toBe(false);
    expect(mayPublish(agent('a1'), t.seedStatusTopic(t.SEED_DEFAULT_ROOT, 'a1'))).toBe(true);
  });
  it('keeps heads, pins, rollbacks, grants and node commands to the hub', () => {
    for (const who of [agent('a1'), operator, client, ANONYMOUS]) {
      expect(mayPublish(who, t.headTopic('acme/web', 'refs/heads/main'))).toBe(false);
      expect(mayPublish(who, t.agentPinTopic('a1', 'web'))).toBe(false);
      expect(mayPublish(who, t.agentRollbackTopic('a1'))).toBe(false);
      expect(mayPublish(who, t.nodeCommandTopic('a1'))).toBe(false);
      expect(mayPublish(who, t.semaphoreTopic('coordinosaur', 'ci', 'go', 'x'))).toBe(false);
    }
    expect(mayPublish(hub, t.headTopic('acme/web', 'refs/heads/main'))).toBe(true);
    expect(mayPublish(hub, 'anything/at/all')).toBe(true);
  });
  it('gives operators control, retries and playbooks, and agents none of them', () => {
    for (const topic of [t.ROLLOUT_CONTROL, t.agentRetryTopic('a1'), t.runRequestTopic('r1'), t.seedCommandTopic(t.SEED_DEFAULT_ROOT, 'a1'), 'pushfleet/notify/request']) {
      expect(mayPublish(operator, topic), topic).toBe(true);
      expect(mayPublish(agent('a1'), topic), topic).toBe(false);
      expect(mayPublish(client, topic), topic).toBe(false);
    }
  });
  it('keeps rollout channels to agents and the hub, other channels to clients', () => {
    const rollout = t.rolloutChannel('web.prod.0123456789ab');
    expect(mayPublish(agent('a1'), t.semaphoreTopic('coordinosaur', rollout, 'register'))).toBe(true);
    expect(mayPublish(agent('a1'), t.semaphoreTopic('coordinosaur', 'ci', 'register'))).toBe(false);
    expect(mayPublish(client, t.semaphoreTopic('coordinosaur', 'ci', 'register'))).toBe(true);
    expect(mayPublish(client, t.semaphoreTopic('/coordinosaur', 'ci', 'finished'))).toBe(true);
    expect(mayPublish(client, t.semaphoreTopic('coordinosaur', rollout, 'register'))).toBe(false);
    expect(mayPublish(operator, t.semaphoreTopic('coordinosaur', 'ci', 'concurrency/set'))).toBe(true);
    expect(mayPublish(operator, t.semaphoreTopic('coordinosaur', rollout, 'concurrency/set'))).toBe(false);
    expect(mayPublish(client, t.semaphoreTopic('coordinosaur', 'ci', 'concurrency/set'))).toBe(false);
    // Operators end jobs on other channels, never a host's rollout job (it would free its slot mid-update).
    for (const action of ['register', 'finished', 'aborted'] as const) {
      expect(mayPublish(operator, t.semaphoreTopic('coordinosaur', 'ci', action)), action).toBe(true);
      expect(mayPublish(operator, t.semaphoreTopic('coordinosaur', rollout, action)), action).toBe(false);
    }
  });
  it('refuses topics outside the table and says who may publish', () => {
    expect(refusePublish(contract, operator, 'elsewhere/x')).toMatch(/outside pushfleet's topics/);
    expect(refusePublish(contract, agent('a1'), t.ROLLOUT_CONTROL)).toMatch(/agent "a1" may not publish rollouts.control.*operator/);
    expect(refusePublish(contract, hub, 'a/+')).toMatch(/not a topic name/);
  });
  it('lets anonymous clients (when allowed) do what agents and operators may, never what only the hub may', () => {
    expect(mayPublish(ANONYMOUS, t.agentStatusTopic('ghost-1'))).toBe(true);
    expect(mayPublish(ANONYMOUS, t.ROLLOUT_CONTROL)).toBe(true);
    expect(mayPublish(ANONYMOUS, t.semaphoreTopic('coordinosaur', t.rolloutChannel('web.prod.0123456789ab'), 'concurrency/set'))).toBe(false);
  });
});

describe('who may read', () => {
  it('lets an agent read heads and its own directives, not another agent’s', () => {
    expect(mayRead(agent('a1'), t.headFilter('acme/web'))).toBe(true);
    expect(mayRead(agent('a1'), t.agentPinTopic('a1', '+'))).toBe(true);
    expect(mayRead(agent('a1'), t.agentRollbackTopic('a1'))).toBe(true);
    expect(mayRead(agent('a1'), t.agentPinTopic('+', '+'))).toBe(false);
    expect(mayRead(agent('a1'), t.agentRollbackTopic('a2'))).toBe(false);
    expect(mayRead(agent('a1'), '#')).toBe(false);
    expect(mayRead(agent('a1'), t.AGENTS_ALL)).toBe(false);
  });
  it('lets an agent follow its own grants on rollout channels only', () => {
    const rollout = t.rolloutChannel('web.prod.0123456789ab');
    expect(mayRead(agent('a1'), `coordinosaur/${rollout}/+/a1`)).toBe(true);
    expect(mayRead(agent('a1'), `coordinosaur/${rollout}/+/a2`)).toBe(false);
    expect(mayRead(agent('a1'), `coordinosaur/${rollout}/error`)).toBe(true);
    expect(mayRead(client, 'coordinosaur/ci/+/job-7')).toBe(true);
    expect(mayRead(client, 'coordinosaur/+/go/+')).toBe(false);
  });
  it('lets every role send itself the marker that ends a read of retained messages', () => {
    for (const who of [agent('a1'), operator, client]) {
      expect(mayPublish(who, t.syncTopic('mqttjs_0a1b2c3d')), JSON.stringify(who)).toBe(true);
      expect(mayRead(who, t.syncTopic('mqttjs_0a1b2c3d')), JSON.stringify(who)).toBe(true);
    }
  });
  it('lets operators read everything and clients only their share', () => {
    expect(mayRead(operator, '#')).toBe(true);
    expect(mayRead(client, t.HUB_STATUS)).toBe(true);
    expect(mayRead(client, t.AGENTS_ALL)).toBe(false);
    expect(mayRead(client, 'elsewhere/#')).toBe(false);
    expect(refuseSubscribe(contract, client, 'a/#/b')).toMatch(/not a topic filter/);
  });
});

import { describe, expect, it } from 'vitest';
import { chooseAgent } from '../../src/hub/engines/jobs/agent-choice.js';
import { AgentExecutor } from '../../src/hub/engines/jobs/agent-executor.js';
import type { AgentRow, Run, RunUpdate } from '../../src/hub/engines/jobs/model.js';
import { createLogger } from '../../src/shared/logger.js';
import { SCHEMA_VERSION, type AgentStatus } from '../../src/shared/messages.js';
import { agentJobTopic, agentStatusTopic } from '../../src/shared/topics.js';
import { ManualClock } from '../support/manual-clock.js';

const agentStatus = (agent: string, over: Partial<AgentStatus> = {}): AgentStatus => ({
  v: SCHEMA_VERSION, agent, state: 'online', labels: { site: 'lab' }, version: 'x', startedAt: null, at: new Date(0).toISOString(), jobs: { actions: ['build'], maxConcurrent: 2, running: 0 }, ...over,
});
const row: AgentRow = { executor: 'agent', line: 2, jobName: 'j', mqttTopic: 't', concurrency: 'allow', params: {}, action: 'build', selector: { site: 'lab' }, timeoutSeconds: 60 };
const run = (id: string, over: Partial<Run> = {}): Run => ({ id, job: 'j', name: `j-${id}`, executor: 'agent', topic: 't', payload: '', params: { sample: 'x' }, status: 'pending', createdAt: 0, ...over });

describe('chooseAgent', () => {
  it('takes the least busy online agent that offers the action and carries the labels', () => {
    const agents = [agentStatus('b'), agentStatus('a', { jobs: { actions: ['build'], maxConcurrent: 2, running: 1 } }), agentStatus('c', { labels: { site: 'home' } }), agentStatus('d', { state: 'offline' }), agentStatus('e', { jobs: undefined })];
    expect(chooseAgent(agents, row, () => 0)).toEqual({ agent: 'b' });
    // What the hub gave an agent counts even before the agent's status says so.
    expect(chooseAgent(agents, row, (a) => (a === 'b' ? 2 : 0))).toEqual({ agent: 'a' });
  });

  it('says why none fits', () => {
    expect(chooseAgent([agentStatus('c', { labels: {} })], row, () => 0)).toEqual({ none: 'no online agent offers action build with labels site=lab' });
    expect(chooseAgent([agentStatus('a')], { ...row, selector: {} }, () => 2)).toEqual({ none: 'every online agent offering action build is busy (a 2/2)' });
  });
});

describe('AgentExecutor', () => {
  function setup() {
    const clock = new ManualClock(1000);
    const sent: { topic: string; payload: string; retain?: boolean }[] = [];
    const publisher = { publish: async (topic: string, payload: string, opts: { retain?: boolean }) => void sent.push({ topic, payload, retain: opts.retain }) };
    const ex = new AgentExecutor({ publisher, clock, log: createLogger('test', 'silent') }, { agentLostSeconds: 30 });
    const feed = (topic: string, value: unknown) => ex.handle(topic, Buffer.from(value === '' ? '' : JSON.stringify(value)));
    const jobStatus = (agent: string, id: string, state: string, extra = {}) => feed(agentJobTopic(agent, id, 'status'), { v: 1, run: id, state, at: new Date(clock.now()).toISOString(), ...extra });
    return { clock, sent, ex, feed, jobStatus };
  }

  it('sends the start to the chosen agent with upper-cased params and reports running then the end once', async () => {
    const { sent, ex, feed, jobStatus } = setup();
    feed(agentStatusTopic('a'), agentStatus('a'));
    const updates: RunUpdate[] = [];
    await ex.start(run('0123456789'), row);
    ex.watch(run('0123456789'), (u) => updates.push(u));
    expect(sent[0]!.topic).toBe(agentJobTopic('a', '0123456789', 'start'));
    expect(JSON.parse(sent[0]!.payload)).toMatchObject({ action: 'build', params: { SAMPLE: 'x' }, timeoutSeconds: 60 });
    jobStatus('a', '0123456789', 'running');
    jobStatus('a', '0123456789', 'running');
    jobStatus('a', '0123456789', 'failed', { reason: 'exited with status 2', output: 'oops' });
    jobStatus('a', '0123456789', 'succeeded');
    expect(updates.map((u) => u.status)).toEqual(['running', 'failed']);
    expect(updates[0]).toMatchObject({ agent: 'a' });
    expect(await ex.logs(run('0123456789'))).toBe('oops');
    await ex.remove(run('0123456789'));
    expect(sent.at(-1)).toEqual({ topic: agentJobTopic('a', '0123456789', 'status'), payload: '', retain: true });
  });

  it('ignores a status of the run from another agent', async () => {
    const { ex, feed, jobStatus } = setup();
    feed(agentStatusTopic('a'), agentStatus('a'));
    const updates: RunUpdate[] = [];
    await ex.start(run('0123456789'), row);
    ex.watch(run('0123456789'), (u) => updates.push(u));
    jobStatus('b', '0123456789', 'succeeded');
    expect(updates).toEqual([]);
  });

  it('fails a run whose agent does not answer the start, or stays offline past agentLostSeconds; a quick return keeps it', async () => {
    const { clock, ex, feed, jobStatus } = setup();
    feed(agentStatusTopic('a'), agentStatus('a'));
    const silent: RunUpdate[] = [];
    await ex.start(run('aaaaaaaaaa'), row);
    ex.watch(run('aaaaaaaaaa'), (u) => silent.push(u));
    clock.advance(30_000);
    expect(silent).toMatchObject([{ status: 'failed', reason: 'agent a did not answer the start within 30 s' }]);

    const lost: RunUpdate[] = [];
    await ex.start(run('bbbbbbbbbb'), row);
    ex.watch(run('bbbbbbbbbb'), (u) => lost.push(u));
    jobStatus('a', 'bbbbbbbbbb', 'running');
    feed(agentStatusTopic('a'), agentStatus('a', { state: 'offline' }));
    clock.advance(20_000);
    feed(agentStatusTopic('a'), agentStatus('a'));
    clock.advance(60_000);
    expect(lost.map((u) => u.status)).toEqual(['running']);
    feed(agentStatusTopic('a'), agentStatus('a', { state: 'offline' }));
    clock.advance(30_000);
    expect(lost.at(-1)).toMatchObject({ status: 'failed', reason: 'agent a went offline' });
  });

  it('adopts a run an agent already reports (a hub restart) instead of starting it elsewhere', async () => {
    const { sent, ex, feed, jobStatus } = setup();
    feed(agentStatusTopic('a'), agentStatus('a'));
    feed(agentStatusTopic('b'), agentStatus('b'));
    jobStatus('b', 'cccccccccc', 'running');
    const updates: RunUpdate[] = [];
    await ex.start(run('cccccccccc'), row);
    ex.watch(run('cccccccccc'), (u) => updates.push(u));
    expect(sent).toEqual([]);
    expect(updates).toMatchObject([{ status: 'running', agent: 'b' }]);
  });

  it('fails at once without an agent, and stop waits for the agent to end the run', async () => {
    const { sent, ex, feed, jobStatus } = setup();
    const none: RunUpdate[] = [];
    await ex.start(run('dddddddddd'), row);
    ex.watch(run('dddddddddd'), (u) => none.push(u));
    expect(none).toMatchObject([{ status: 'failed', reason: 'no online agent offers action build with labels site=lab' }]);
    feed(agentStatusTopic('a'), agentStatus('a'));
    await ex.start(run('eeeeeeeeee'), row);
    jobStatus('a', 'eeeeeeeeee', 'running');
    let stopped = false;
    const stopping = ex.stop(run('eeeeeeeeee')).then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    expect(sent.at(-1)!.topic).toBe(agentJobTopic('a', 'eeeeeeeeee', 'stop'));
    expect(stopped).toBe(false);
    jobStatus('a', 'eeeeeeeeee', 'failed', { reason: 'stopped' });
    await stopping;
    expect(stopped).toBe(true);
  });
});

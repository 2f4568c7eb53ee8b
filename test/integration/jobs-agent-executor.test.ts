import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentExecutor } from '../../src/hub/engines/jobs/agent-executor.js';
import type { AgentRow, Run, RunUpdate } from '../../src/hub/engines/jobs/model.js';
import { systemClock } from '../../src/hub/engines/engine.js';
import { Signer } from '../../src/hub/signed-publish.js';
import { TopicContract } from '../../src/shared/contract/topic-table.js';
import { createLogger } from '../../src/shared/logger.js';
import { SCHEMA_VERSION } from '../../src/shared/messages.js';
import { loadSigningKey, PRIVATE_KEY_FILE } from '../../src/shared/signing/keys.js';
import { agentJobTopic, agentRefusedTopic } from '../../src/shared/topics.js';
import { startAgentProcess } from '../support/agent-process.js';
import { userUrl } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { attempt } from '../support/mqtt-attempt.js';
import { startTestHub, watch, type BrokerKind, type TestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const runOf = (params: Record<string, string> = {}): Run => {
  const id = randomBytes(5).toString('hex');
  return { id, job: 'build', name: `build-${id}`, executor: 'agent', topic: 'lab/exp-1/done', payload: '{"file":"a b.csv"}', params, status: 'pending', createdAt: Date.now() };
};
const rowOf = (action: string, extra: Partial<AgentRow> = {}): AgentRow => ({
  executor: 'agent', line: 2, jobName: 'build', mqttTopic: 'lab/+/done', concurrency: 'allow', params: {}, action, selector: {}, timeoutSeconds: 60, ...extra,
});

describe('jobs: the agent executor runs an action of a chosen agent', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** The hub-side executor on a connection of role hub, signing with the test hub's key as the hub's publisher does. */
  async function executorOn(hub: TestHub, agentLostSeconds = 5) {
    // On mosquitto the test hub's mqttUrl is an operator's; the executor publishes as the hub.
    const client = await mqtt.connectAsync(hub.broker ? (await hub.broker.user('hub', 'hub')).url : hub.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => client.endAsync(true));
    let seq = 0;
    const signer = new Signer(loadSigningKey(join(hub.stateDir, PRIVATE_KEY_FILE)), new TopicContract(), (now) => (seq = Math.max(seq + 1, now * 1000)));
    /** The last bytes sent per topic, to send them again. */
    const sealed = new Map<string, Buffer>();
    const publisher = {
      publish: async (topic: string, payload: string, opts: { qos: 0 | 1; retain?: boolean }) => {
        const bytes = await signer.seal(topic, payload);
        sealed.set(topic, bytes);
        await client.publishAsync(topic, bytes, opts);
      },
    };
    const executor = new AgentExecutor({ publisher, clock: systemClock, log: createLogger('executor', 'warn') }, { agentLostSeconds });
    client.on('message', (topic, payload) => executor.handle(topic, payload));
    await client.subscribeAsync([...executor.subscriptions], { qos: 1 });
    /** Starts a run and collects what watch reports until it ends. */
    const run = async (row: AgentRow, r: Run = runOf()) => {
      const updates: RunUpdate[] = [];
      await executor.start(r, row);
      executor.watch(r, (u) => updates.push(u));
      const ended = () => waitFor(`run ${r.id} ended (updates: ${JSON.stringify(updates)})`, () => updates.find((u) => u.status !== 'running'));
      return { run: r, updates, ended };
    };
    return { executor, client, run, sealed };
  }

  /** A shell script in a temp dir, run as ["/bin/sh", file]. */
  function script(body: string): string[] {
    const file = join(cleanup.tempDir('pushfleet-job-script-'), 'job.sh');
    writeFileSync(file, `${body}\n`);
    return ['/bin/sh', file];
  }

  async function fleet(agentLostSeconds?: number, kind: BrokerKind = 'aedes') {
    const hub = await startTestHub(cleanup, kind);
    const work = cleanup.tempDir('pushfleet-job-out-');
    const actions = {
      report: { command: script('env > "$OUT/env.txt"; echo "hello from the job"; echo "to stderr" >&2'), env: { OUT: work } },
      broken: { command: script('echo "about to fail"; exit 3') },
      slow: { command: script('echo $$ > "$OUT/pid"; echo started; sleep 60'), env: { OUT: work }, stopTimeout: 2 },
      secret: { command: script('true') },
    };
    const stateDir = join(cleanup.tempDir('pushfleet-agent-state-'), 'state');
    const agentOpts = { id: 'runner-1', mqttUrl: hub.mqttUrl, labels: { site: 'lab' }, actions, jobs: { actions: ['report', 'broken', 'slow'], maxConcurrent: 2 }, stateDir };
    const agent = await startAgentProcess(cleanup, agentOpts);
    const ex = await executorOn(hub, agentLostSeconds);
    // The executor learns the agent's offer from its retained status.
    await waitFor('the agent offers its actions', () => {
      const c = (ex.executor as unknown as { agents: Map<string, { jobs?: unknown }> }).agents.get('runner-1');
      return c?.jobs !== undefined;
    });
    return { hub, work, agent, agentOpts, ...ex };
  }

  it('runs the action with the run in its environment, reports success with its output, and clears the status on remove', async () => {
    const f = await fleet();
    const r = runOf({ sample: 'S-17', mode: 'fast $(rm -rf /)' });
    const { updates, ended } = await f.run(rowOf('report', { selector: { site: 'lab' } }), r);
    const end = await ended();
    expect(end).toMatchObject({ status: 'succeeded' });
    expect(updates[0]).toMatchObject({ status: 'running', agent: 'runner-1' });
    const env = Object.fromEntries(readFileSync(join(f.work, 'env.txt'), 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(env).toMatchObject({
      PUSHFLEET_JOB_RUN: r.id,
      PUSHFLEET_JOB_NAME: r.job,
      PUSHFLEET_JOB_TOPIC: 'lab/exp-1/done',
      PUSHFLEET_JOB_PAYLOAD: '{"file":"a b.csv"}',
      PUSHFLEET_JOB_PARAM_SAMPLE: 'S-17',
      PUSHFLEET_JOB_PARAM_MODE: 'fast $(rm -rf /)',
    });
    const logs = await f.executor.logs(r);
    expect(logs).toContain('hello from the job');
    expect(logs).toContain('to stderr');
    // remove clears the agent's retained status.
    const status = agentJobTopic('runner-1', r.id, 'status');
    await f.executor.remove(r);
    const seen = await watch(cleanup, f.hub.mqttUrl, status);
    await new Promise((res) => setTimeout(res, 300));
    expect(seen.messages.filter((m) => m.retain)).toEqual([]);
  });

  it('a failing action fails the run with its exit code; a timeout and a stop end it too', async () => {
    const f = await fleet();
    const broken = await f.run(rowOf('broken'));
    expect(await broken.ended()).toMatchObject({ status: 'failed', reason: 'exited with status 3' });
    expect(await f.executor.logs(broken.run)).toContain('about to fail');

    const timed = await f.run(rowOf('slow', { timeoutSeconds: 1 }));
    expect(await timed.ended()).toMatchObject({ status: 'failed', reason: 'timed out after 1 s' });

    const stopped = await f.run(rowOf('slow'));
    await waitFor('the slow run runs', () => stopped.updates.some((u) => u.status === 'running') && existsSync(join(f.work, 'pid')));
    await f.executor.stop(stopped.run);
    expect(await stopped.ended()).toMatchObject({ status: 'failed', reason: 'stopped' });
    const pid = Number(readFileSync(join(f.work, 'pid'), 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('fails at once when no online agent offers the action with the labels; the agent refuses an action it does not offer', async () => {
    const f = await fleet();
    const none = await f.run(rowOf('report', { selector: { site: 'elsewhere' } }));
    expect(await none.ended()).toMatchObject({ status: 'failed', reason: 'no online agent offers action report with labels site=elsewhere' });
    const notOffered = await f.run(rowOf('secret'));
    expect(await notOffered.ended()).toMatchObject({ status: 'failed', reason: 'no online agent offers action secret' });
    // The same start sent to the agent anyway (a hub that believes it is offered): refused by the agent itself.
    const r = runOf();
    const updates: RunUpdate[] = [];
    f.executor.watch({ ...r, agent: 'runner-1' }, (u) => updates.push(u));
    await f.executor.start({ ...r, agent: 'runner-1' }, rowOf('secret'));
    await waitFor('refused by the agent', () => updates.find((u) => u.status === 'failed'));
    expect(updates.at(-1)).toMatchObject({ status: 'failed', reason: expect.stringContaining('action "secret" is not offered to jobs by this agent') });
  });

  it('refuses a start that is not signed by the hub: an operator or client cannot publish it, an unsigned one from the hub role is not run', async () => {
    const f = await fleet();
    const r = runOf();
    const start = JSON.stringify({ v: SCHEMA_VERSION, run: r.id, job: 'build', name: r.name, action: 'report', topic: '', payload: '', params: {}, timeoutSeconds: 60 });
    const topic = agentJobTopic('runner-1', r.id, 'start');
    for (const role of ['operator', 'client'] as const) {
      const url = await userUrl(f.hub.mqttUrl, `stolen-${role}`, role);
      // Logged in (once the hub has read its users file again), then cut off at the publish.
      let outcome = await attempt(url, { topic, payload: start });
      for (let i = 0; outcome === 'refused at login' && i < 20; i++) {
        await new Promise((res) => setTimeout(res, 250));
        outcome = await attempt(url, { topic, payload: start });
      }
      expect(outcome).toBe('connection closed');
    }
    const refused = await watch(cleanup, f.hub.mqttUrl, agentRefusedTopic('runner-1'));
    await f.client.publishAsync(topic, start, { qos: 1 });
    await waitFor('the agent reports the refusal', () => refused.messages.find((m) => m.topic === agentRefusedTopic('runner-1') && m.payload.includes(topic)));
    const statuses = await watch(cleanup, f.hub.mqttUrl, agentJobTopic('runner-1', r.id, 'status'));
    await new Promise((res) => setTimeout(res, 300));
    expect(statuses.messages).toEqual([]);
    expect(existsSync(join(f.work, 'env.txt'))).toBe(false);
  });

  it('on mosquitto with the generated ACL: runs a job, and another agent can neither read its starts nor write its status', async () => {
    const f = await fleet(undefined, 'mosquitto');
    const other = await mqtt.connectAsync((await f.hub.broker!.user('runner-2', 'agent')).url, { reconnectPeriod: 0 });
    cleanup.defer(() => other.endAsync(true));
    const overheard: string[] = [];
    other.on('message', (topic) => overheard.push(topic));
    await other.subscribeAsync(agentJobTopic('runner-1', '+', 'start'), { qos: 1 });
    const r = runOf();
    // A forged end, before the agent's own: mosquitto drops it.
    expect(await attempt((await f.hub.broker!.user('runner-2', 'agent')).url, { topic: agentJobTopic('runner-1', r.id, 'status'), payload: JSON.stringify({ v: 1, run: r.id, state: 'succeeded', at: new Date().toISOString() }), retain: true })).not.toBe('refused at login');
    const { ended } = await f.run(rowOf('broken'), r);
    expect(await ended()).toMatchObject({ status: 'failed', reason: 'exited with status 3' });
    expect(overheard).toEqual([]);
  });

  it('a redelivered start is not run again', async () => {
    const f = await fleet();
    const first = await f.run(rowOf('report'));
    await first.ended();
    writeFileSync(join(f.work, 'env.txt'), 'ran once\n');
    // The same signed bytes again (a QoS 1 redelivery) ...
    const startTopic = agentJobTopic('runner-1', first.run.id, 'start');
    await f.client.publishAsync(startTopic, f.sealed.get(startTopic)!, { qos: 1 });
    await f.agent.waitForLog('the redelivery seen', (l) => l.msg === 'job start seen before: not run again' && l.run === first.run.id);
    // ... and a new start of the same run from a hub that lost track of it (its status cleared).
    await f.executor.remove(first.run);
    const restarted = await executorOn(f.hub);
    const again = await restarted.run(rowOf('report'), { ...first.run, agent: 'runner-1' });
    expect(await again.ended()).toMatchObject({ status: 'succeeded' });
    await waitFor('both starts seen', () => f.agent.lines.filter((l) => l.msg === 'job start seen before: not run again' && l.run === first.run.id).length === 2);
    expect(readFileSync(join(f.work, 'env.txt'), 'utf8')).toBe('ran once\n');
  });

  it('an agent killed (-9) mid-run reports the run failed once it is back, and stops what the run left', async () => {
    const f = await fleet(60);
    const slow = await f.run(rowOf('slow'));
    await waitFor('the slow run runs', () => slow.updates.some((u) => u.status === 'running') && existsSync(join(f.work, 'pid')));
    const pid = Number(readFileSync(join(f.work, 'pid'), 'utf8'));
    await f.agent.stop('SIGKILL');
    expect(() => process.kill(pid, 0)).not.toThrow(); // its own process group outlived the agent
    await startAgentProcess(cleanup, f.agentOpts);
    expect(await slow.ended()).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^agent restarted while the job ran; .*terminated/) });
    await waitFor('the left-over process is gone', () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
  });

  it('a run whose agent goes away fails after agentLostSeconds', async () => {
    const f = await fleet(2);
    const slow = await f.run(rowOf('slow'));
    await waitFor('the slow run runs', () => slow.updates.some((u) => u.status === 'running'));
    await f.agent.stop('SIGKILL');
    expect(await slow.ended()).toMatchObject({ status: 'failed', reason: 'agent runner-1 went offline' });
  });
});

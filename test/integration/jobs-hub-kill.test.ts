import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { requestJobs, type JobsOp } from '../../src/cli/jobs-request.js';
import type { JobsReply } from '../../src/shared/contract/jobs-engine-messages.js';
import { startAgentProcess } from '../support/agent-process.js';
import { userUrl } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { hubProcesses } from '../support/hub-process.js';
import { watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const P = 'services/mqtt_job_listener';
const SLEEP = `setTimeout(() => console.log('done ' + process.env.PUSHFLEET_JOB_NAME), Number(process.env.PUSHFLEET_JOB_PARAM_MS))`;

/** One request on a connection of its own: the hub's broker comes and goes in this test. */
async function ask(url: string, op: JobsOp): Promise<JobsReply> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000 });
  try {
    return await requestJobs(client, op, 10);
  } finally {
    await client.endAsync(true);
  }
}

describe('jobs across a hub kill -9', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('a run under way when the hub is killed is watched again after its restart, and its end is reported once (and chains once)', async () => {
    const dir = cleanup.tempDir('pushfleet-jobs-kill-');
    const table = join(dir, 'jobs.yaml');
    writeFileSync(
      table,
      stringify([
        { job_name: 'long', mqtt_topic: 'lab/long', action: 'sleep', params: { MS: { pattern: '[0-9]+', default: '5000' } } },
        { job_name: 'after', mqtt_topic: `${P}/job_complete/long`, action: 'sleep', params: { MS: { pattern: '[0-9]+', default: '10' } } },
      ]),
    );
    const hubs = await hubProcesses(cleanup, 'aedes', {}, { engines: { jobs: { table } } });
    let hub = await hubs.start();
    const operatorUrl = await userUrl(hubs.mqttUrl, 'op', 'operator');
    await startAgentProcess(cleanup, { id: 'runner-1', mqttUrl: hubs.mqttUrl, logLevel: 'info', actions: { sleep: { command: [process.execPath, '-e', SLEEP] } }, jobs: { actions: ['sleep'] } });
    await new Promise((r) => setTimeout(r, 300));

    const run = (await ask(operatorUrl, { op: 'trigger', job: 'long', payload: '' })).run!;
    await waitFor('the run running on the agent', async () => (await ask(operatorUrl, { op: 'show', run: run.id })).run?.status === 'running');
    await hub.stop('SIGKILL');
    hub = await hubs.start();
    const seen = await watch(cleanup, operatorUrl, `${P}/job_complete/+`);

    await waitFor('after ran', () => seen.messages.some((m) => m.topic === `${P}/job_complete/after`), 30_000);
    // A moment for any second report to show.
    await new Promise((r) => setTimeout(r, 1000));
    const longs = seen.messages.filter((m) => m.topic === `${P}/job_complete/long`).map((m) => JSON.parse(m.payload) as { run: string; status: string });
    expect(longs).toEqual([expect.objectContaining({ run: run.id, status: 'succeeded' })]);
    expect(seen.messages.filter((m) => m.topic === `${P}/job_complete/after`)).toHaveLength(1);
    const shown = (await ask(operatorUrl, { op: 'show', run: run.id })).run!;
    expect(shown).toMatchObject({ status: 'succeeded', agent: 'runner-1' });
    expect((await ask(operatorUrl, { op: 'logs', run: run.id })).logs).toContain('done long');
    await hub.stop();
  });
});

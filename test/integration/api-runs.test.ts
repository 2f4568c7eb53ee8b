import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { requestJobs } from '../../src/cli/jobs-request.js';
import { startAgentProcess } from '../support/agent-process.js';
import { apiClient, apiTokens } from '../support/api-client.js';
import { userUrl } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { CliProcess } from '../support/cli-process.js';
import { loadSpec } from '../support/openapi.js';
import { actionStateDir, fakeAction, waitForClocks } from '../support/orchestrator-fleet.js';
import { startTestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const spec = await loadSpec();
/** The job's action: exits 3 when the trigger payload says {"mode":"fail"}. */
const STEP = `process.exit(JSON.parse(process.env.PUSHFLEET_JOB_PAYLOAD || '{}').mode === 'fail' ? 3 : 0)`;

describe('playbook and job runs API: a real hub, one agent process that is a node and a job runner', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('shows each playbook run with its steps and each job run with its outcome', async () => {
    const dir = cleanup.tempDir('pushfleet-api-runs-');
    const table = join(dir, 'jobs.yaml');
    writeFileSync(table, stringify([{ job_name: 'fetch', mqtt_topic: 'lab/start', action: 'step' }]));
    const hub = await startTestHub(cleanup, 'aedes', { engines: { jobs: { table } } });
    const { viewer } = await apiTokens(hub.usersFile!);
    const api = apiClient(spec, `http://127.0.0.1:${hub.httpPort}`);
    const operatorUrl = await userUrl(hub.mqttUrl, 'op', 'operator');
    const state = actionStateDir(cleanup);
    await startAgentProcess(cleanup, {
      id: 'node1',
      mqttUrl: hub.mqttUrl,
      logLevel: 'info',
      orchestrator: { actions: { SLEEP: fakeAction(state, 'sleep'), FAIL: fakeAction(state, 'fail') } },
      actions: { step: { command: [process.execPath, '-e', STEP] } },
      jobs: { actions: ['step'], maxConcurrent: 2 },
    });
    await waitForClocks(cleanup, hub.mqttUrl, ['node1']);

    // A playbook whose second step fails.
    const playbook = join(dir, 'check.yaml');
    writeFileSync(playbook, 'name: check\nsteps:\n  - id: warm\n    targets: [node1]\n    action: SLEEP\n    args: [0.1]\n  - id: probe\n    targets: [node1]\n    action: FAIL\n    args: [4]\n    after: [warm]\n');
    const play = new CliProcess(['play', playbook, '--mqtt-url', hub.mqttUrl]);
    cleanup.defer(() => play.stop('SIGKILL'));
    expect(await play.exited).toBe(1);
    const runs = await waitFor('the run listed as failed', async () => {
      const r = (await api.get('/playbooks/runs', viewer)).body;
      return r.items?.[0]?.status === 'failed' && r;
    });
    expect(runs).toMatchObject({ total: 1, items: [{ name: 'check', file: playbook, steps: 2, stepsDone: 2, endedAt: expect.any(String) }] });
    const run = (await api.get(`/playbooks/runs/${runs.items[0].runId}`, viewer)).body;
    expect(run.steps.map((s: any) => [s.id, s.status, s.nodes.map((n: any) => [n.node, n.outcome, n.exitCode])])).toEqual([
      ['warm', 'ok', [['node1', 'ok', 0]]],
      ['probe', 'failed', [['node1', 'failed', 4]]],
    ]);
    expect((await api.get('/playbooks/runs/nope', viewer)).status).toBe(404);

    // Two job runs, the second failing.
    const op = await mqtt.connectAsync(operatorUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => op.endAsync(true));
    const ids: string[] = [];
    for (const mode of ['ok', 'fail']) {
      const reply = await requestJobs(op, { op: 'trigger', job: 'fetch', payload: JSON.stringify({ mode }) }, 10);
      ids.push(reply.run!.id);
      await waitFor(`run ${mode} ended`, async () => ['succeeded', 'failed'].includes((await api.get(`/jobs/runs/${reply.run!.id}`, viewer)).body.status));
    }
    const jobs = (await api.get('/jobs/runs?job=fetch', viewer)).body;
    expect(jobs.total).toBe(2);
    expect(jobs.items.map((r: any) => [r.id, r.status, r.agent, r.executor])).toEqual([
      [ids[1], 'failed', 'node1', 'agent'],
      [ids[0], 'succeeded', 'node1', 'agent'],
    ]);
    expect(jobs.items[0]).toMatchObject({ reason: expect.stringContaining('3'), payloadBytes: 15, endedAt: expect.any(String) });
    expect(jobs.items[0]).not.toHaveProperty('payload');
    expect((await api.get('/jobs/runs?limit=1&offset=1', viewer)).body.items.map((r: any) => r.id)).toEqual([ids[0]]);
    expect((await api.get('/jobs/runs/0123456789', viewer)).status).toBe(404);
    expect((await api.get('/jobs/runs?job=Bad_Name', viewer)).status).toBe(400);
  });

  it('answers 503 where an engine does not run', async () => {
    const hub = await startTestHub(cleanup, 'aedes', { engines: { rollouts: { enabled: false } } });
    const { viewer } = await apiTokens(hub.usersFile!);
    const api = apiClient(spec, `http://127.0.0.1:${hub.httpPort}`);
    await waitFor('the token taken', async () => (await api.get('/playbooks/runs', viewer)).status === 200);
    expect((await api.get('/jobs/runs', viewer)).body).toMatchObject({ code: 'unavailable', error: expect.stringContaining('engines.jobs') });
    expect((await api.get('/rollouts', viewer)).body).toMatchObject({ code: 'unavailable', error: expect.stringContaining('engines.rollouts') });
  });
});

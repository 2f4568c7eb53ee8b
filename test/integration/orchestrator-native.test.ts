import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RunReport } from '../../src/shared/contract/orchestrator-messages.js';
import { Cleanup } from '../support/cleanup.js';
import { CliProcess } from '../support/cli-process.js';
import { actionStateDir, fakeAction, livePids, startNodes, waitForClocks } from '../support/orchestrator-fleet.js';
import { BROKERS, startTestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const IDS = ['node1', 'node2', 'node3'];

describe.each(BROKERS)('native playbooks over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function setup() {
    const hub = await startTestHub(cleanup, broker);
    const dir = cleanup.tempDir('pushfleet-play-');
    const state = actionStateDir(cleanup);
    const actions = { SLEEP: fakeAction(state, 'sleep'), FAIL: fakeAction(state, 'fail') };
    const agents = await startNodes(cleanup, hub.mqttUrl, [
      { id: 'node1', labels: { role: 'client' }, actions },
      { id: 'node2', labels: { role: 'server' }, actions },
      { id: 'node3', labels: { role: 'client' }, actions },
    ]);
    await waitForClocks(cleanup, hub.mqttUrl, IDS);
    /** Starts `pushfleet play` on a YAML playbook; `finished` parses its report. */
    const play = (name: string, yaml: string) => {
      const file = join(dir, `${name}.yaml`);
      const reportFile = join(dir, `${name}.json`);
      writeFileSync(file, yaml);
      const cli = new CliProcess(['play', file, '--mqtt-url', hub.mqttUrl, '--report', reportFile]);
      cleanup.defer(() => cli.stop('SIGKILL'));
      const finished = async () => ({ code: await cli.exited, report: RunReport.parse(JSON.parse(readFileSync(reportFile, 'utf8'))), stdout: cli.stdout });
      const started = (step: string, nodes: string[]) => waitFor(`${step} started on ${nodes.join(', ')}`, () => nodes.every((n) => cli.stdout.includes(`${step}/${n} started`)));
      return { cli, finished, started };
    };
    return { hub, state, agents, play };
  }

  it('starts a step on every node at once and stops each action after its duration', async () => {
    const { state, play } = await setup();
    const run = play(
      'duration',
      `steps:
  - id: hold
    targets: [node1, node2, node3]
    action: SLEEP
    args: [600]
    duration: 1
  - id: clients
    targets: {role: client}
    action: SLEEP
    args: [0.1]
    after: [hold]
`,
    );
    const { code, report, stdout } = await run.finished();
    expect(code, stdout).toBe(0);
    expect(report.status).toBe('ok');
    const [hold, clients] = report.steps;
    expect(hold!.nodes.map((n) => [n.node, n.outcome, n.stoppedBy])).toEqual(IDS.map((id) => [id, 'ok', 'duration']));
    expect(hold!.skewMs).not.toBeNull();
    // The dependent step started only after every duration had stopped its action.
    expect(clients!.nodes.map((n) => n.node)).toEqual(['node1', 'node3']);
    expect(Math.min(...clients!.nodes.map((n) => n.startedAt!))).toBeGreaterThan(Math.max(...hold!.nodes.map((n) => n.endedAt!)));
    expect(clients!.nodes.every((n) => n.outcome === 'ok' && n.exitCode === 0 && n.outputTail.includes('slept'))).toBe(true);
    expect(stdout).toMatch(/run duration ok in/);
    expect(livePids(state)).toEqual([]);
  });

  it('fails the step of a node whose agent dies mid-run, and stops the others', async () => {
    const { state, agents, play } = await setup();
    const run = play('dies', 'steps:\n  - { id: long, targets: [node1, node2, node3], action: SLEEP, args: [600], timeout: 300 }\n');
    await run.started('long', IDS);
    await agents.get('node3')!.stop('SIGKILL');
    const { code, report } = await run.finished();
    expect(code).toBe(1);
    expect(report.status).toBe('failed');
    const nodes = Object.fromEntries(report.steps[0]!.nodes.map((n) => [n.node, n.outcome]));
    // Lost through the agent's last will, long before the 300 s timeout; the others were stopped.
    expect(nodes).toEqual({ node1: 'stopped', node2: 'stopped', node3: 'lost' });
    // Only the dead agent's action is left (orphaned; systemd's KillMode would take it).
    await waitFor('the orphaned action of node3', () => livePids(state).some((p) => p.node === 'node3'));
    expect(livePids(state).map((p) => p.node)).toEqual(['node3']);
  });

  it('tells at once that the run is lost when the hub dies mid-run (its last will)', async () => {
    const { hub, play } = await setup();
    const run = play('orphan', 'steps:\n  - { id: long, targets: [node1, node2], action: SLEEP, args: [600], duration: 5 }\n');
    await run.started('long', ['node1', 'node2']);
    // A crash as the broker sees it: the hub's connection drops without a DISCONNECT.
    hub.mqtt.stream.destroy();
    expect(await run.cli.exited).toBe(1);
    expect(run.cli.stderr).toMatch(/the hub went offline at .*: the run is lost/);
  });

  it('Ctrl-C stops every running action on every node and exits non-zero', async () => {
    const { state, play } = await setup();
    const run = play('interrupted', 'steps:\n  - { id: long, targets: {role: client}, action: SLEEP, args: [600] }\n  - { id: other, targets: node2, action: SLEEP, args: [600] }\n');
    await run.started('long', ['node1', 'node3']);
    await run.started('other', ['node2']);
    await run.cli.stop('SIGINT');
    const { code, report, stdout } = await run.finished();
    expect(code).toBe(1);
    expect(report.status).toBe('cancelled');
    expect(report.steps.flatMap((s) => s.nodes.map((n) => n.outcome))).toEqual(['stopped', 'stopped', 'stopped']);
    expect(stdout).toContain('interrupted');
    expect(livePids(state)).toEqual([]);
  });

  it('fails a step whose action or arguments a node does not allow, per onFailure', async () => {
    const { play } = await setup();
    const run = play(
      'refused',
      `steps:
  - { id: bad-args, targets: node1, action: SLEEP, args: ['1;reboot'], onFailure: continue }
  - { id: no-such-action, targets: node2, action: REBOOT, onFailure: continue }
  - { id: exits-3, targets: node3, action: FAIL, args: [3] }
  - { id: never, targets: node1, action: SLEEP, args: [1], after: [exits-3] }
`,
    );
    const { code, report } = await run.finished();
    expect(code).toBe(1);
    const steps = Object.fromEntries(report.steps.map((s) => [s.id, [s.status, s.nodes[0]?.outcome ?? null, s.error ?? s.nodes[0]?.error ?? null]]));
    expect(steps['bad-args']).toEqual(['failed', 'refused', expect.stringContaining('does not match')]);
    expect(steps['no-such-action']).toEqual(['failed', null, 'agent node2 has no action REBOOT']);
    expect(steps['exits-3']).toEqual(['failed', 'failed', 'exited with status 3']);
    expect(steps['never']).toEqual(['skipped', null, null]);
  });
});

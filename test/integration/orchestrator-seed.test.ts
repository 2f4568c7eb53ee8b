import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { seedCommandTopic, seedStatusTopic } from '../../src/shared/topics.js';
import { Cleanup } from '../support/cleanup.js';
import { unrestrictedUrl } from '../support/mosquitto.js';
import { CliProcess, runCli } from '../support/cli-process.js';
import { actionStateDir, fakeAction, livePids, PLAYBOOKS, startNodes } from '../support/orchestrator-fleet.js';
import { freePort } from '../support/ports.js';
import { BROKERS, startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const ROOT = 'testlab';

describe.each(BROKERS)('seed playbooks over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** node2 serves (START) and sends its report (SENDFILE); node1 and node3 are clients. */
  async function setup(node2Queue?: number) {
    const hub = await startTestHub(cleanup, broker);
    const dir = cleanup.tempDir('pushfleet-play-');
    const state = actionStateDir(cleanup);
    const client = { START: fakeAction(state, 'client') };
    const server = { START: fakeAction(state, 'server'), SENDFILE: fakeAction(state, 'sendfile', { command: fakeAction(state, 'sendfile').command.concat(join(state, 'server-report.txt')) }) };
    await startNodes(cleanup, hub.mqttUrl, [
      { id: 'node1', actions: client, acceptSeedCommands: true },
      { id: 'node2', actions: server, queueSize: node2Queue, acceptSeedCommands: true },
      { id: 'node3', actions: client, acceptSeedCommands: true },
    ]);
    const play = async (name: string, text: string, extra: string[] = []) => {
      const file = join(dir, name);
      writeFileSync(file, text);
      const report = join(dir, `${name}.report.json`);
      const r = await runCli(['play', file, '--mqtt-url', hub.mqttUrl, '--report', report, '--waitfor-timeout', '20', ...extra]);
      return { ...r, report: JSON.parse(readFileSync(report, 'utf8')) };
    };
    return { hub, dir, state, play };
  }

  it('runs the sample playbook to completion on three agent processes', async () => {
    const { dir, state, play } = await setup();
    // The sample as shipped, with free ports; RECEIVE's test.txt lands in --out-dir, made for it.
    const [iperfPort, receivePort] = [String(await freePort()), String(await freePort())];
    const outDir = join(dir, 'results', 'run-1');
    const received = join(outDir, 'test.txt');
    const sample = readFileSync(join(PLAYBOOKS, 'playbook.sample'), 'utf8').replaceAll('5201', iperfPort).replaceAll('6000', receivePort);
    const run = await play('playbook.sample', sample, ['--out-dir', outDir]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.report.status).toBe('ok');
    expect(run.report.instructions.every((i: { status: string }) => i.status === 'ok')).toBe(true);
    expect(readFileSync(received, 'utf8')).toMatch(/^received [1-9]\d* bytes from 2 clients$/m);
    // It says where the file went, and nothing else was left there (no partial file).
    expect(run.stdout).toMatch(new RegExp(`received test\\.txt → ${received.replaceAll('.', '\\.')} \\([1-9]\\d* bytes\\)`));
    expect(readdirSync(outDir)).toEqual(['test.txt']);
    expect(existsSync(join(dir, 'test.txt'))).toBe(false);
    const outcomes = run.report.results.map((r: { node: string; stepId: string; outcome: string }) => `${r.node} ${r.stepId} ${r.outcome}`).sort();
    expect(outcomes).toEqual(['node1 START ok', 'node2 SENDFILE ok', 'node2 START stopped', 'node3 START ok']);
    expect(run.stdout).toMatch(/playbook .* ok in/);
    expect(livePids(state)).toEqual([]);
  });

  it('WAITFOR matches exactly and ignores a status retained by an earlier run', async () => {
    const { hub, dir, play } = await setup();
    // An echo node: publishes whatever it is sent as its status, like a seed node scripted to.
    const fake = await mqtt.connectAsync(await unrestrictedUrl(hub.mqttUrl), { will: { topic: seedStatusTopic(ROOT, 'fake'), payload: Buffer.from('OFFLINE'), retain: true, qos: 1 } });
    cleanup.defer(() => fake.endAsync(true));
    fake.on('message', (_t, payload) => void fake.publishAsync(seedStatusTopic(ROOT, 'fake'), payload.toString(), { qos: 1, retain: true }));
    await fake.subscribeAsync(seedCommandTopic(ROOT, 'fake'), { qos: 1 });
    await fake.publishAsync(seedStatusTopic(ROOT, 'fake'), 'ALIVE', { qos: 1, retain: true });

    // Timeouts leave the echo seconds to arrive: the full suite runs on two busy cores.
    const near = await play('near.txt', 'WAITFOR fake ALIVE\nSEND fake STARTED_X\nWAITFOR fake STARTED 3\n');
    expect(near.code).toBe(1);
    expect(near.stdout).toContain('timed out after 3 s (latest status: STARTED_X)');

    const exact = await play('exact.txt', 'SEND fake STARTED_X\nSEND fake STARTED\nWAITFOR fake STARTED 5\n');
    expect(exact.code, exact.stdout).toBe(0);

    // STARTED is still retained from the run above: a new run must not take it for an answer.
    const stale = await play('stale.txt', 'WAITFOR fake STARTED 1\n');
    expect(stale.code).toBe(1);
    expect(stale.report.instructions[0].detail).toContain('timed out');

    // A real node: STOP answers STOPPED, which the seed's substring match took for "STOP".
    const real = await play('real.txt', 'SEND node1 STOP\nWAITFOR node1 STOP 3\n');
    expect(real.code).toBe(1);
    expect(real.stdout).toContain('latest status: STOPPED');

    // A node that dies fails the wait through its OFFLINE last will, not the timeout.
    const file = join(dir, 'gone.txt');
    writeFileSync(file, 'SEND fake SLEEPING\nWAITFOR fake SLEEPING 30\nWAITFOR fake DONE 30\n');
    const gone = new CliProcess(['play', file, '--mqtt-url', hub.mqttUrl]);
    await waitFor('the wait for DONE', () => gone.stdout.includes('WAITFOR fake DONE'));
    fake.stream.destroy();
    expect(await gone.exited).toBe(1);
    expect(gone.stdout).toContain('WAITFOR fake DONE: fake is OFFLINE');
  });

  it('queues a command for a busy node, refuses one beyond the queue, and loses none', async () => {
    const { hub, dir, play } = await setup(1);
    const statuses = await watch(cleanup, hub.mqttUrl, seedStatusTopic(ROOT, 'node2'));
    const [iperfPort, receivePort] = [await freePort(), await freePort()];
    const received = join(dir, 'report.txt');
    const run = await play(
      'busy.txt',
      [
        `SEND node2 START ${iperfPort}`,
        'WAITFOR node2 STARTED',
        'WAIT 1', // the server writes its report on SIGTERM once Node has started it
        `SEND node2 SENDFILE 127.0.0.1 ${receivePort}`,
        'WAITFOR node2 QUEUED',
        `SEND node2 START ${iperfPort}`,
        'WAITFOR node2 BUSY',
        `RECEIVE ${receivePort} report.txt`,
        'SEND node2 STOP',
        'WAITFOR node2 STOPPED',
        'WAITFOR node2 STARTED',
        'WAITFOR node2 DONE',
      ].join('\n'),
      ['--out-dir', dir],
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
    // The queued SENDFILE ran once the server was stopped: its report arrived.
    expect(readFileSync(received, 'utf8')).toMatch(/^received \d+ bytes/);
    const live = statuses.messages.filter((m) => !m.retain).map((m) => m.payload);
    expect(live).toEqual(['STARTED', 'QUEUED', 'BUSY', 'STOPPED', 'STARTED', 'DONE']);
  });
});

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { actionLauncher } from '../../agent/node/action-launcher.js';
import { NodeAction } from '../../agent/node/node-config.js';
import { NodeExecutor } from '../../agent/node/node-executor.js';
import type { RunningProcess } from '../../agent/run-command.js';
import { preciseNow } from '../../src/hub/engines/orchestrator/precise-time.js';
import { SCHEMA_VERSION } from '../../src/shared/messages.js';
import type { NodeResult } from '../../src/shared/contract/orchestrator-messages.js';
import { Cleanup } from '../support/cleanup.js';
import { waitFor } from '../support/wait.js';

const log = pino({ level: 'silent' });
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Whether any process of group `pgid` is left (signal 0 checks without sending anything). */
const groupAlive = (pgid: number) => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A node executor on real processes, this machine's clock, and the real timed start (by its own gate, or released by the agent). */
function realNode(dir: string, timedGate: boolean) {
  const results: NodeResult[] = [];
  const procs: RunningProcess[] = [];
  const launcher = actionLauncher({ agent: 'agent-1', seedNode: 'node1' }, { stopGrace: 2 }, timedGate, log);
  const exec = new NodeExecutor({
    actions: {
      // The script prints its argv and the node's environment; a marker file says it ran at all.
      SHOW: NodeAction.parse({ command: ['sh', '-c', 'echo ran > "$1"; printf "%s|%s|%s|%s|%s" "$0" "$2" "$PUSHFLEET_AGENT" "$PUSHFLEET_NODE" "$PUSHFLEET_ACTION"', 'show', join(dir, 'ran')], args: 'append' }),
    },
    queueSize: 1,
    agent: 'agent-1',
    seedNode: 'node1',
    launch: {
      start: (r) => launcher.start(r),
      startAt: (r, at, started) => {
        const p = launcher.startAt(r, at, started);
        procs.push(p);
        return p;
      },
    },
    status: () => undefined,
    result: (r) => results.push(r),
    clock: { now: preciseNow, offsetMs: () => 0, errorMs: () => 0.01 },
    log,
  });
  cleanup.defer(() => exec.stopAll());
  const start = (startAt: number) => exec.nativeStart({ v: SCHEMA_VERSION, kind: 'start', runId: 'run-1', stepId: 's1', action: 'SHOW', args: ['word'], startAt, durationMs: null, sentAt: preciseNow() }, preciseNow());
  const finished = () => waitFor('the finished report', () => results.find((r) => r.phase === 'finished'), 10_000);
  return { exec, results, procs, start, finished };
}

describe.each([
  ['by its own gate (bash)', true],
  ['released by the agent', false],
])('a timed start on real processes, %s', (_gate, timedGate) => {
  it('runs the configured argv with the node environment, released at T and not before', async () => {
    const dir = cleanup.tempDir('pushfleet-gated-');
    const { start, procs, finished } = realNode(dir, timedGate);
    const T = preciseNow() + 300;
    start(T);
    // Created ahead of T, and held: the action itself has not run.
    expect(procs).toHaveLength(1);
    expect(groupAlive(procs[0]!.pid!)).toBe(true);
    await new Promise((r) => setTimeout(r, 150));
    expect(existsSync(join(dir, 'ran'))).toBe(false);
    const report = await finished();
    expect(report).toMatchObject({ outcome: 'ok', exitCode: 0, outputTail: 'show|word|agent-1|node1|SHOW' });
    expect(report.startedAt!).toBeGreaterThanOrEqual(T);
    expect(existsSync(join(dir, 'ran'))).toBe(true);
  });

  it.each([
    ['the hub stops the step', (exec: NodeExecutor) => exec.nativeStop('run-1', 's1')],
    ['the agent shuts down', (exec: NodeExecutor) => exec.stopAll()],
  ])('stopped before T (%s): no waiting process is left, and the action never runs', async (_how, stop) => {
    const dir = cleanup.tempDir('pushfleet-gated-');
    const { exec, start, procs, finished } = realNode(dir, timedGate);
    start(preciseNow() + 5000);
    const pgid = procs[0]!.pid!;
    expect(groupAlive(pgid)).toBe(true);
    await stop(exec);
    expect(await finished()).toMatchObject({ outcome: 'stopped', startedAt: null });
    expect(groupAlive(pgid)).toBe(false);
    expect(existsSync(join(dir, 'ran'))).toBe(false);
  });
});

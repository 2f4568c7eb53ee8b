import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NodeAction } from '../../agent/node/node-config.js';
import { NodeExecutor } from '../../agent/node/node-executor.js';
import type { ProcessExit, RunningProcess } from '../../agent/run-command.js';
import { SCHEMA_VERSION } from '../../src/shared/messages.js';
import { type NodeResult } from '../../src/shared/contract/orchestrator-messages.js';

/** A process the test ends by hand; terminate() ends it as a well-behaved action would (and cancels a pending release, as the launcher does). */
class FakeProcess implements RunningProcess {
  opened = false;
  terminated = false;
  cancelRelease = () => {};
  private end!: (exit: ProcessExit) => void;
  readonly exited = new Promise<ProcessExit>((r) => (this.end = r));
  constructor(readonly argv: string[], readonly gated: boolean) {}
  open(): void {
    this.opened = true;
  }
  kill(): void {}
  terminate(): void {
    this.cancelRelease();
    this.terminated = true;
    this.exit(null, 'SIGTERM');
  }
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    this.end({ code, signal, timedOut: false, tail: 'output', error: null });
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

function setup(queueSize = 1) {
  const statuses: string[] = [];
  const results: NodeResult[] = [];
  const procs: FakeProcess[] = [];
  const timers: { at: number; fn: (t: number) => void; cancelled: boolean }[] = [];
  let now = 50;
  const exec = new NodeExecutor({
    actions: {
      START: NodeAction.parse({ command: ['server'], args: 'append' }),
      SEND: NodeAction.parse({ command: ['send'] }),
    },
    queueSize,
    agent: 'agent-1',
    seedNode: 'node1',
    launch: {
      start: (r) => {
        const p = new FakeProcess(r.argv, false);
        procs.push(p);
        return p;
      },
      // Released at `at` by fire(t), as the launcher's gate would be.
      startAt: (r, at, started) => {
        const p = new FakeProcess(r.argv, true);
        procs.push(p);
        const timer = {
          at,
          fn: (t: number) => {
            p.open();
            started(t);
          },
          cancelled: false,
        };
        timers.push(timer);
        p.cancelRelease = () => (timer.cancelled = true);
        return p;
      },
    },
    status: (w) => statuses.push(w),
    result: (r) => results.push(r),
    // The hub is 1000 ms ahead of this agent.
    clock: { now: () => now, offsetMs: () => 1000, errorMs: () => 0.05 },
    log: pino({ level: 'silent' }),
  });
  const start = (runId: string, extra: Partial<{ action: string; args: string[]; durationMs: number | null; startAt: number }> = {}) =>
    exec.nativeStart({ v: SCHEMA_VERSION, kind: 'start', runId, stepId: 's1', action: 'START', args: [], startAt: 1200, durationMs: null, sentAt: 1040, ...extra }, 60);
  const fire = (t: number) => {
    now = t;
    for (const timer of timers.splice(0)) if (!timer.cancelled) timer.fn(t);
  };
  return { exec, statuses, results, procs, start, fire, timers };
}

describe('node executor', () => {
  afterEach(() => vi.useRealTimers());

  it('runs a seed command at once as argv, and reports STARTED then DONE', async () => {
    const { exec, statuses, results, procs } = setup();
    exec.seedCommand('START  5201 ');
    expect(procs[0]).toMatchObject({ argv: ['server', '5201'], gated: false });
    procs[0]!.exit(0);
    await tick();
    expect(statuses).toEqual(['STARTED', 'DONE']);
    expect(results.map((r) => [r.runId, r.stepId, r.node, r.phase, r.outcome])).toEqual([
      ['seed', 'START', 'node1', 'started', null],
      ['seed', 'START', 'node1', 'finished', 'ok'],
    ]);
  });

  it('refuses unknown actions and disallowed words without running anything', () => {
    const { exec, statuses, procs } = setup();
    exec.seedCommand('REBOOT now');
    exec.seedCommand('SEND extra');
    exec.seedCommand('START $(id)');
    exec.seedCommand('');
    expect(statuses).toEqual(['REFUSED', 'REFUSED', 'REFUSED', 'REFUSED']);
    expect(procs).toEqual([]);
  });

  it('queues a command while busy, refuses one beyond the queue, runs the queued one after STOP', async () => {
    const { exec, statuses, procs } = setup(1);
    exec.seedCommand('START 1');
    exec.seedCommand('SEND');
    exec.seedCommand('START 2');
    expect(statuses).toEqual(['STARTED', 'QUEUED', 'BUSY']);
    exec.seedCommand('STOP');
    await tick();
    expect(procs[0]!.terminated).toBe(true);
    // STOPPED comes before the queued command's STARTED; the refused one never runs.
    expect(statuses).toEqual(['STARTED', 'QUEUED', 'BUSY', 'STOPPED', 'STARTED']);
    expect(procs.map((p) => p.argv[0])).toEqual(['server', 'send']);
    procs[1]!.exit(1);
    await tick();
    expect(statuses.at(-1)).toBe('FAILED');
  });

  it('TERMINATE drops the queue; STOP with nothing running still answers STOPPED', async () => {
    const { exec, statuses, procs } = setup(4);
    exec.seedCommand('STOP');
    await tick();
    exec.seedCommand('START 1');
    exec.seedCommand('SEND');
    exec.seedCommand('TERMINATE');
    await tick();
    expect(statuses).toEqual(['STOPPED', 'STARTED', 'QUEUED', 'TERMINATED']);
    expect(procs).toHaveLength(1);
  });

  it('native: creates the process gated at once, opens it at T on the local clock, stops it after its duration', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { start, results, procs, timers, fire, statuses } = setup();
    start('run-1', { args: ['9'], durationMs: 500 });
    expect(procs[0]).toMatchObject({ argv: ['server', '9'], gated: true, opened: false });
    expect(timers[0]!.at).toBe(200); // hub 1200 − offset 1000
    fire(200.01);
    expect(procs[0]!.opened).toBe(true);
    expect(results[0]).toMatchObject({ phase: 'started', runId: 'run-1', stepId: 's1', node: 'agent-1', leadMs: 140, clockErrorMs: 0.05 });
    expect(results[0]!.startedAt).toBeCloseTo(1200.01);
    expect(results[0]!.lateByMs).toBeCloseTo(0.01);
    await vi.advanceTimersByTimeAsync(499);
    expect(procs[0]!.terminated).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(procs[0]!.terminated).toBe(true);
    expect(results[1]).toMatchObject({ phase: 'finished', outcome: 'ok', stoppedBy: 'duration', signal: 'SIGTERM', outputTail: 'output' });
    expect(statuses).toEqual(['STARTED', 'STOPPED']);
  });

  it('native: answers busy while another action runs, refused for a bad action, failed when far too late', () => {
    const { exec, start, results } = setup();
    start('run-0', { startAt: 1060 - 1001 }); // received at hub time 1060, T was 1001 ms before
    exec.seedCommand('START');
    start('run-1');
    start('run-2', { action: 'NOPE' });
    expect(results.filter((r) => r.runId !== 'seed').map((r) => [r.runId, r.outcome, r.phase])).toEqual([
      ['run-0', 'failed', 'finished'],
      ['run-1', 'busy', 'finished'],
      ['run-2', 'refused', 'finished'],
    ]);
    expect(results[0]!.error).toBe('the command arrived 1001 ms after its start instant');
  });

  it('native: a stop before T cancels the start; a stop for another run changes nothing', async () => {
    const { exec, start, results, procs, timers } = setup();
    start('run-1');
    exec.nativeStop('run-other', null);
    expect(procs[0]!.terminated).toBe(false);
    exec.nativeStop('run-1', 's1');
    await tick();
    expect(timers[0]!.cancelled).toBe(true);
    expect(procs[0]!.opened).toBe(false);
    expect(results.map((r) => [r.phase, r.outcome, r.startedAt])).toEqual([['finished', 'stopped', null]]);
  });
});

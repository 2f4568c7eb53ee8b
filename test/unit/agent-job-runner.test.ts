import { afterEach, describe, expect, it } from 'vitest';
import { ActionConfig } from '../../agent/action-config.js';
import { JobRunner } from '../../agent/jobs/job-runner.js';
import { RunRecords } from '../../agent/jobs/run-records.js';
import type { ProcessExit, RunningProcess } from '../../agent/run-command.js';
import type { AgentJobStatus, JobStart } from '../../src/shared/contract/jobs-messages.js';
import { createLogger } from '../../src/shared/logger.js';
import { Cleanup } from '../support/cleanup.js';

const start = (run: string): JobStart => ({ v: 1, run, job: 'j', name: `j-${run}`, action: 'build', topic: '', payload: '', params: {}, timeoutSeconds: 60 });
const settle = () => new Promise((r) => setImmediate(r));

describe('JobRunner (agent side)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  function setup(stateDir = cleanup.tempDir('pushfleet-job-runner-')) {
    const published: AgentJobStatus[] = [];
    const procs: { argv: readonly string[]; end(exit: Partial<ProcessExit>): void; terminated: boolean }[] = [];
    const records = new RunRecords(stateDir);
    const runner = new JobRunner({
      actions: { build: ActionConfig.parse({ command: ['make'] }) },
      jobs: { actions: ['build'], maxConcurrent: 1 },
      records,
      launch: async (argv, _opts, track) => {
        await track(4242, argv[0]!);
        let end!: (exit: ProcessExit) => void;
        const exited = new Promise<ProcessExit>((r) => (end = r));
        const p = { argv, terminated: false, end: (e: Partial<ProcessExit>) => end({ code: 0, signal: null, timedOut: false, tail: '', error: null, ...e }) };
        procs.push(p);
        return { pid: 4242, exited, open: () => undefined, kill: () => undefined, terminate: () => void (p.terminated = true) } satisfies RunningProcess;
      },
      describeGroup: (pid, argv0) => ({ pgid: pid, startTime: 1, bootId: 'b', step: 'job', argv0 }),
      stopLeftover: async () => 'job (make, process group 4242, 1 process) was still running; terminated (SIGTERM) before recovery',
      publish: async (_run, status) => void published.push(status),
      changed: () => undefined,
      now: () => 0,
      log: createLogger('test', 'silent'),
    });
    return { runner, published, procs, records, stateDir };
  }

  it('refuses a start past maxConcurrent, and runs a redelivered start once', async () => {
    const { runner, published, procs } = setup();
    runner.start(start('aaaaaaaaaa'));
    await settle();
    runner.start(start('aaaaaaaaaa'));
    runner.start(start('bbbbbbbbbb'));
    await settle();
    expect(procs).toHaveLength(1);
    expect(published.find((s) => s.run === 'bbbbbbbbbb')).toMatchObject({ state: 'failed', reason: 'busy: 1 of jobs.maxConcurrent 1 runs under way' });
    procs[0]!.end({ code: 0, tail: 'done' });
    await settle();
    runner.start(start('aaaaaaaaaa'));
    await settle();
    expect(procs).toHaveLength(1);
    expect(published.filter((s) => s.run === 'aaaaaaaaaa').map((s) => s.state)).toEqual(['running', 'succeeded', 'succeeded']);
  });

  it('a stop before the start is recorded, so the late start does not run', async () => {
    const { runner, published, procs } = setup();
    runner.stop('cccccccccc');
    await settle();
    runner.start(start('cccccccccc'));
    await settle();
    expect(procs).toHaveLength(0);
    expect(published.at(-1)).toMatchObject({ run: 'cccccccccc', state: 'failed', reason: 'stopped before it started' });
  });

  it('after a restart, a run left running ends failed with what was stopped', async () => {
    const first = setup();
    first.runner.start(start('dddddddddd'));
    await settle();
    expect(first.records.get('dddddddddd')).toMatchObject({ status: { state: 'running' }, group: { pgid: 4242 } });
    const again = setup(first.stateDir);
    await again.runner.recover();
    await settle();
    expect(again.published).toMatchObject([{ run: 'dddddddddd', state: 'failed', reason: expect.stringMatching(/^agent restarted while the job ran; job \(make/) }]);
    expect(again.records.get('dddddddddd')).toMatchObject({ status: { state: 'failed' }, published: true });
  });
});

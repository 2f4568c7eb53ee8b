import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ActionConfig, type ActionsConfig } from '../../agent/action-config.js';
import { commandEnv } from '../../agent/command-env.js';
import { parseStat } from '../../agent/process-group.js';
import { launch } from '../../agent/run-command.js';
import { CopyGroups } from '../../agent/services/copy-groups.js';
import { GenerationFile } from '../../agent/services/generation-file.js';
import { LeaseHolder } from '../../agent/services/lease-holder.js';
import { ServiceSupervisor, type CopyState, type ServiceExit } from '../../agent/services/service-supervisor.js';
import { createLogger } from '../../src/shared/logger.js';
import { Cleanup } from '../support/cleanup.js';
import { waitFor } from '../support/wait.js';

const RECORD = fileURLToPath(new URL('../fixtures/services/record.sh', import.meta.url));
const WATCHDOG = fileURLToPath(new URL('../fixtures/services/watchdog.cjs', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The live (not zombie) processes of a group, with their command lines; an orphan zombie may wait for a PID 1 that does not reap. */
const members = (pgid: number) =>
  readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .flatMap((n) => {
      try {
        const stat = parseStat(readFileSync(`/proc/${n}/stat`, 'utf8'));
        return stat !== null && stat.pgrp === pgid && !stat.zombie ? [`${n} ${readFileSync(`/proc/${n}/cmdline`, 'utf8').replaceAll('\0', ' ')}`] : [];
      } catch {
        return []; // gone meanwhile
      }
    });
const groupAlive = (pgid: number) => members(pgid).length > 0;
/** A process the kernel is still tearing down (its exit reported, /proc not yet a zombie) counts as going: wait briefly. */
const groupGone = (pgid: number) => waitFor(() => `process group ${pgid} gone; left: ${JSON.stringify(members(pgid))}`, () => !groupAlive(pgid), 5000);

describe('ServiceSupervisor (real processes)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  function setup(maxWorkers = 4, onExit: (exit: ServiceExit) => void = () => undefined, runtimeSubdir = 'run') {
    const dir = cleanup.tempDir('pushfleet-svc-');
    const records = join(dir, 'records');
    const env = { RECORDS: records };
    const actions: ActionsConfig = {
      // Their own stopTimeout (default 10 s) is the jobs' one: services get services.stopTimeout.
      worker: ActionConfig.parse({ command: [RECORD], env, lastArgument: true }),
      stubborn: ActionConfig.parse({ command: [RECORD], env: { ...env, STUBBORN: '1' } }),
      crash: ActionConfig.parse({ command: [RECORD], env: { ...env, EXIT_WITH: '3' } }),
      leaver: ActionConfig.parse({ command: ['/bin/sh', '-c', 'sleep 30 </dev/null >/dev/null 2>&1 & echo "child $! pgid=$$" >> "$RECORDS"'], env }),
      pinger: ActionConfig.parse({ command: [process.execPath, WATCHDOG], env: { ...env, UNIX_DGRAM_FROM: join(ROOT, 'package.json') }, watchdogSec: 2 }),
    };
    const exits: ServiceExit[] = [];
    const notes: CopyState[] = [];
    const output: string[] = [];
    const groups = new CopyGroups(dir);
    const supervisor = new ServiceSupervisor({
      actions,
      services: { actions: Object.keys(actions), maxWorkers, stopTimeout: 0.5 },
      runtimeDir: join(dir, runtimeSubdir),
      launch,
      env: commandEnv,
      exited: (exit) => {
        exits.push(exit);
        onExit(exit);
      },
      notified: (_name, state) => notes.push(state),
      output: (ids, line) => output.push(`${ids.name}@${ids.generation}: ${line}`),
      groups,
      log: createLogger('test', 'silent'),
    });
    cleanup.defer(() => supervisor.stopAll('test over'));
    const lines = () => (existsSync(records) ? readFileSync(records, 'utf8').split('\n').filter(Boolean) : []);
    const line = (prefix: string) => waitFor(() => `a record "${prefix}"; have ${JSON.stringify(lines())}`, () => lines().find((l) => l.startsWith(prefix)));
    const exit = (name: string) => waitFor(() => `the exit of ${name}; have ${JSON.stringify(exits)}`, () => exits.find((e) => e.name === name));
    return { supervisor, exits, notes, output, groups, lines, line, exit, dir };
  }

  it('starts the configured argv with the argument and the service facts in its environment, without the agent secrets', async () => {
    process.env.PUSHFLEET_MQTT_PASSWORD = 'hunter2';
    cleanup.defer(() => delete process.env.PUSHFLEET_MQTT_PASSWORD);
    const { supervisor, line } = setup();
    supervisor.start({ name: 'web', generation: 7, restarts: 0, action: 'worker', arg: 'two words; $(rm -rf /)' });
    const start = await line('start web 7');
    expect(start).toMatch(/ arg=two words; \$\(rm -rf \/\) last=two words; \$\(rm -rf \/\) notify=set watchdog=none secret=none$/);
    expect(supervisor.running().get('web')).toMatchObject({ generation: 7, stopping: false });
  });

  it('refuses an action not offered and more than maxWorkers copies, reported as exits', async () => {
    const { supervisor, exits, line } = setup(1);
    supervisor.start({ name: 'a', generation: 1, restarts: 0, action: 'worker', arg: '' });
    supervisor.start({ name: 'b', generation: 1, restarts: 0, action: 'worker', arg: '' });
    supervisor.start({ name: 'c', generation: 1, restarts: 0, action: 'rm-rf', arg: '' });
    await line('start a 1');
    expect(exits.map((e) => `${e.name}: ${e.reason}`)).toEqual([
      'b: refused: busy: 1 of services.maxWorkers 1 running',
      'c: refused: action "rm-rf" is not offered to services by this agent (offered: worker, stubborn, crash, leaver, pinger)',
    ]);
  });

  it('a runtime dir too deep for a socket address is a clear error, and nothing runs', async () => {
    const { supervisor, lines, exit } = setup(4, undefined, 'x'.repeat(100));
    supervisor.start({ name: 'web', generation: 1, restarts: 0, action: 'worker', arg: '' });
    expect((await exit('web')).reason).toMatch(/^cannot start: notify socket path \/.*web\.notify is longer than 107 bytes; use a shorter stateDir$/);
    expect(lines()).toEqual([]);
    expect(supervisor.running().size).toBe(0);
  });

  it('stops with SIGTERM to the process group and reports the exit; the group is on record while it runs', async () => {
    const { supervisor, line, exit, groups, dir } = setup();
    supervisor.start({ name: 'web', generation: 2, restarts: 0, action: 'worker', arg: '' });
    const pgid = Number(/pgid=(\d+)/.exec(await line('start web 2'))![1]);
    expect(new CopyGroups(dir).recorded().get('web')).toMatchObject({ generation: 2, restarts: 0, group: { pgid, step: 'service', argv0: RECORD } });
    await supervisor.stop('web', 'cancelled');
    await line('stop 2');
    expect(await exit('web')).toEqual({ name: 'web', generation: 2, restarts: 0, code: 0, signal: null, reason: 'stopped: cancelled', stopped: true });
    await groupGone(pgid);
    expect(supervisor.running().size).toBe(0);
    expect(groups.recorded().size).toBe(0);
    expect(new CopyGroups(dir).recorded().size).toBe(0);
  });

  it('escalates to SIGKILL after services.stopTimeout (not the action\'s) when SIGTERM is ignored', async () => {
    const { supervisor, line, exit } = setup();
    supervisor.start({ name: 'stub', generation: 1, restarts: 0, action: 'stubborn', arg: '' });
    const pgid = Number(/pgid=(\d+)/.exec(await line('start stub 1'))![1]);
    const asked = performance.now();
    await supervisor.stop('stub', 'cancelled');
    // Killed after 0.5 s, far from the action's own 10 s.
    expect(performance.now() - asked).toBeLessThan(5000);
    await line('ignored TERM 1');
    expect(await exit('stub')).toMatchObject({ signal: 'SIGKILL', reason: 'stopped: cancelled', stopped: true });
    await groupGone(pgid);
  });

  it('a stop that comes later than due takes the lateness off the stopTimeout: past it, SIGKILL at once', async () => {
    const { supervisor, lines, line, exit } = setup();
    supervisor.start({ name: 'stub', generation: 1, restarts: 0, action: 'stubborn', arg: '' });
    await line('start stub 1');
    await supervisor.stopAll('lease ran out', 800);
    expect(await exit('stub')).toMatchObject({ signal: 'SIGKILL', reason: 'stopped: lease ran out' });
    expect(lines().filter((l) => l.startsWith('ignored TERM'))).toEqual([]);
  });

  it('reports an exit of its own, and does not restart it; passes on its stdout and stderr', async () => {
    const { supervisor, lines, exit, output } = setup();
    supervisor.start({ name: 'once', generation: 1, restarts: 0, action: 'crash', arg: '' });
    expect(await exit('once')).toEqual({ name: 'once', generation: 1, restarts: 0, code: 3, signal: null, reason: 'exited with status 3', stopped: false });
    expect(output.sort()).toEqual(['once@1: err once', 'once@1: out once 1']);
    await new Promise((r) => setTimeout(r, 300));
    expect(lines().filter((l) => l.startsWith('start'))).toHaveLength(1);
  });

  it('a copy that ends leaves nothing of its process group behind (a daemonised child would be a second copy)', async () => {
    const { supervisor, line, exit } = setup();
    supervisor.start({ name: 'leaver', generation: 1, restarts: 0, action: 'leaver', arg: '' });
    const pgid = Number(/pgid=(\d+)/.exec(await line('child '))![1]);
    cleanup.defer(() => {
      try {
        process.kill(-pgid, 'SIGKILL'); // only if the supervisor failed to: the test leaves nothing behind
      } catch {
        // gone, as it should be
      }
    });
    expect(await exit('leaver')).toMatchObject({ code: 0, reason: 'exited with status 0' });
    await groupGone(pgid);
  });

  it('stops a service that stops sending WATCHDOG=1 for watchdogSec, and passes on READY=1 and STATUS=', async () => {
    const { supervisor, lines, line, exit, notes } = setup();
    supervisor.start({ name: 'pinger', generation: 4, restarts: 0, action: 'pinger', arg: '' });
    expect(await line('start 4')).toBe('start 4 watchdog=2000000');
    const ended = await exit('pinger');
    expect(ended).toMatchObject({ generation: 4, reason: 'watchdog timeout', signal: 'SIGTERM' });
    // It was kept while it pinged: the timeout came only after its last ping.
    expect(lines()).toContain('ping 5');
    expect(notes.find((n) => n.ready)).toMatchObject({ generation: 4, ready: true, status: 'serving' });
  });

  it('when the lease runs out, the copy is gone by a0 + leaseMs + stopTimeout (plus the drift allowance)', async () => {
    let goneAt = 0;
    let holder: LeaseHolder | undefined;
    const { supervisor, line, lines, exits, dir } = setup(4, () => {
      goneAt = performance.now();
      holder!.exited();
    });
    const clock = { now: () => performance.now(), setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout) };
    holder = new LeaseHolder({ agent: 'a1', session: 's', clock, copies: supervisor, generations: new GenerationFile(dir), refused: () => undefined, log: createLogger('test', 'silent') });
    const req = holder.renewal();
    const leaseMs = 1000;
    holder.granted({ v: 1, session: 's', seq: req.seq, grantedAt: 1, leaseMs, renewMs: 300, services: { stub: { generation: 3, restarts: 0, action: 'stubborn', arg: '' } } });
    const a0 = holder.heldUntil() - leaseMs;
    const pgid = Number(/pgid=(\d+)/.exec(await line('start stub 3'))![1]);
    await waitFor(() => `the lease run out; group ${pgid}: ${JSON.stringify(members(pgid))}, records ${JSON.stringify(lines())}`, () => exits.length > 0);
    expect(exits[0]).toMatchObject({ name: 'stub', generation: 3, signal: 'SIGKILL', reason: 'stopped: lease ran out' });
    await groupGone(pgid);
    expect(goneAt).toBeGreaterThanOrEqual(a0 + leaseMs);
    expect(goneAt).toBeLessThan(a0 + leaseMs + 500 + 200);
    // Ended here: the same generation is never started again.
    expect(new GenerationFile(dir).load()).toEqual({ stub: { generation: 3, restarts: 0, ended: true } });
  });

  it('a copy does not outlive its agent: kill -9 of the agent takes the whole group down (needs npm run build)', async () => {
    const dir = cleanup.tempDir('pushfleet-svc-orphan-');
    const records = join(dir, 'records');
    const child = spawn(process.execPath, [fileURLToPath(new URL('../fixtures/services/supervisor-child.mjs', import.meta.url)), RECORD, records, join(dir, 'run')], { stdio: 'ignore' });
    const gone = new Promise((r) => child.once('exit', r));
    cleanup.defer(() => {
      child.kill('SIGKILL');
      return gone;
    });
    const start = await waitFor('the start record', () => existsSync(records) && readFileSync(records, 'utf8').split('\n').find((l) => l.startsWith('start orphan 9')));
    const pgid = Number(/pgid=(\d+)/.exec(start)![1]);
    cleanup.defer(() => {
      try {
        process.kill(-pgid, 'SIGKILL'); // only if the guard failed: the test must leave nothing behind
      } catch {
        // gone, as it should be
      }
    });
    expect(groupAlive(pgid)).toBe(true);
    child.kill('SIGKILL');
    await gone;
    await groupGone(pgid);
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgentProcess } from '../support/agent-process.js';
import { deployThenPushSlow, linesOf, startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';
import { BROKERS } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

/**
 * An update command that writes `start <sha> <pid>` when it begins and `end <sha>` when it ends
 * (`stopped <sha>` when SIGTERM ends it), and for a commit holding a file `slow` sleeps 30 s
 * between (in a child, as build scripts do) the first time only: long beside an agent restart on
 * a loaded machine, so only the restarted agent can end it, and the redo that follows is quick. Its output goes to /dev/null: otherwise its first
 * write to the pipe of the killed agent would end it (SIGPIPE), and a quiet command would not.
 */
const markedUpdate = (marker: string) => [
  '/bin/sh',
  '-c',
  'exec >/dev/null 2>&1; trap \'echo "stopped $PUSHFLEET_SHA" >> "$0"; exit 143\' TERM; echo "start $PUSHFLEET_SHA $$" >> "$0"; if [ -e slow ] && [ ! -e "$0.slept" ]; then : > "$0.slept"; sleep 30; fi; echo "end $PUSHFLEET_SHA" >> "$0"',
  marker,
];

/** Running (a zombie has exited: it writes nothing more). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** The marker's lines, checked to show one update at a time: never two starts without an end (or a stop) between. */
function oneAtATime(marker: string): string[] {
  let open = 0;
  for (const line of linesOf(marker)) {
    open += line.startsWith('start ') ? 1 : -1;
    expect(open, `two updates at once: ${linesOf(marker).join(' | ')}`).toBeLessThanOrEqual(1);
  }
  return linesOf(marker).map((l) => l.split(' ').slice(0, 2).join(' '));
}

describe.each(BROKERS)('an agent killed -9 while an update command runs, over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function killedDuringUpdate(onInterrupted: 'redo' | 'rollback') {
    const stateDir = cleanup.tempDir('pushfleet-agent-state-');
    const marker = join(cleanup.tempDir('pushfleet-marker-'), 'updates.log');
    const f = await startAppFixture(cleanup, broker, { update: [markedUpdate(marker)], onInterrupted });
    const start = () => startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig], stateDir });
    const agent = await start();
    const { a, b } = await deployThenPushSlow(f);
    const started = await waitFor('the update command running for B', () => linesOf(marker).find((l) => l.startsWith(`start ${b}`)));
    const orphan = Number(started.split(' ')[2]);
    await agent.stop('SIGKILL');
    expect(alive(orphan)).toBe(true); // the command outlives the agent: its own process group
    const beforeRestart = f.states().length;
    await start();
    return { ...f, a, b, marker, orphan, beforeRestart };
  }

  it('stops the left-over command before redoing the update (onInterrupted: redo)', async () => {
    const f = await killedDuringUpdate('redo');
    const deployed = await f.until('deployed B after the restart', (s) => s.state === 'deployed' && s.sha === f.b, f.beforeRestart);
    await waitFor('the left-over command gone', () => !alive(f.orphan));
    expect(oneAtATime(f.marker)).toEqual([`start ${f.a}`, `end ${f.a}`, `start ${f.b}`, `stopped ${f.b}`, `start ${f.b}`, `end ${f.b}`]);
    expect(deployed.interrupted).toMatchObject({ step: 'update', action: 'redo', leftover: expect.stringMatching(/^update \(\/bin\/sh, process group \d+, 2 processes\) was still running; terminated/) });
  });

  it('stops the left-over command before rolling back (onInterrupted: rollback)', async () => {
    const f = await killedDuringUpdate('rollback');
    const back = await f.until('rolled back to A after the restart', (s) => s.state === 'rolled-back' && s.sha === f.a, f.beforeRestart);
    // The orphan's sleep would end well after the rollback's update: wait until it is gone either way.
    await waitFor('the left-over command gone', () => !alive(f.orphan));
    expect(oneAtATime(f.marker)).toEqual([`start ${f.a}`, `end ${f.a}`, `start ${f.b}`, `stopped ${f.b}`, `start ${f.a}`, `end ${f.a}`]);
    expect(back.interrupted).toMatchObject({ step: 'update', action: 'rollback', leftover: expect.stringMatching(/still running; terminated/) });
    expect(f.git.headOf(f.path)).toBe(f.a);
  });
});

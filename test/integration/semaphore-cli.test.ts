import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { CliProcess, runCli } from '../support/cli-process.js';
import { startTestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';
import { coordinosaurClient } from '../support/coordinosaur-client.js';

describe('pushfleet sem run', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function setup() {
    const hub = await startTestHub(cleanup, 'aedes', { engines: { semaphore: { positionUpdateMs: 100 } } });
    const c = await coordinosaurClient(cleanup, hub.mqttUrl);
    const sem = (channel: string, command: string[], extra: string[] = []) => ['sem', 'run', '--channel', channel, '--timeout', '30', '--mqtt-url', hub.mqttUrl, ...extra, '--', ...command];
    return { c, sem };
  }
  const node = (code: string) => [process.execPath, '-e', code];

  it('runs the command in a slot, passes its exit code through and reports finished or aborted', async () => {
    const { c, sem } = await setup();
    const ok = await runCli(sem('cli', node('process.stdout.write("ran")')));
    expect([ok.code, ok.stdout]).toEqual([0, 'ran']);
    const failed = await runCli(sem('cli', node('process.exit(3)')));
    expect(failed.code).toBe(3);
    const missing = await runCli(sem('cli', ['/nonexistent/command']));
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain('cannot run /nonexistent/command');
    await c.infos('cli');
    const ends = c.messages.filter((m) => /^coordinosaur\/cli\/(finished|aborted)$/.test(m.topic)).map((m) => m.topic.split('/')[2]);
    expect(ends).toEqual(['finished', 'aborted', 'aborted']);
    expect((await c.infos('cli')).working).toEqual([]);
  });

  it('shows its queue position while it waits and runs once the slot frees', async () => {
    const { c, sem } = await setup();
    const dir = cleanup.tempDir('pushfleet-sem-');
    const marker = join(dir, 'ran');
    await c.register('busy', 'holder');
    await c.register('busy', 'ahead');
    const run = new CliProcess(sem('busy', node(`require('fs').writeFileSync(${JSON.stringify(marker)}, '')`)));
    cleanup.defer(() => run.stop('SIGKILL'));
    await waitFor(() => `position 2 in stderr: ${run.stderr}`, () => run.stderr.includes('position 2 of 2'));
    await c.publish('coordinosaur/busy/aborted', 'ahead');
    await waitFor(() => `position 1 in stderr: ${run.stderr}`, () => run.stderr.includes('position 1 of 1'));
    expect(existsSync(marker)).toBe(false);
    await c.publish('coordinosaur/busy/finished', 'holder');
    expect(await run.exited).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  it('withdraws its registration on SIGINT while waiting', async () => {
    const { c, sem } = await setup();
    await c.register('held', 'holder');
    const run = new CliProcess(sem('held', node('process.exit(0)')));
    cleanup.defer(() => run.stop('SIGKILL'));
    await waitFor(() => `queued: ${run.stderr}`, () => run.stderr.includes('position 1'));
    expect(await run.stop('SIGINT')).toBe(130);
    const info = await c.infos('held');
    expect(info.waiting).toEqual([]);
    expect(c.on('coordinosaur/held/aborted')).toHaveLength(1);
  });

  it('rejects a bad channel or a missing command as usage errors', async () => {
    expect((await runCli(['sem', 'run', '--channel', 'a/b', '--timeout', '5', '--', 'true'])).code).toBe(2);
    expect((await runCli(['sem', 'run', '--channel', 'a', '--timeout', '5'])).code).toBe(2);
  });
});

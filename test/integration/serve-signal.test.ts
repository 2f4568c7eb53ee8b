import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLI } from '../support/cli-process.js';
import { waitFor } from '../support/wait.js';

const LIFECYCLE = pathToFileURL(join(dirname(CLI), 'process-lifecycle.js')).href;

/**
 * A real process serving a service whose start takes `startMs`: it prints "starting", "started"
 * and "stopped" as they happen, and exits with what serve() leaves.
 */
function serveProcess(startMs: number) {
  const script = `
    import { serve } from ${JSON.stringify(LIFECYCLE)};
    const log = { info() {}, warn() {}, error() {}, debug() {}, child() { return log; } };
    await serve('test', log, async () => {
      console.log('starting');
      await new Promise((r) => setTimeout(r, ${startMs}));
      console.log('started');
      return { status: () => 'up', stop: async () => console.log('stopped') };
    });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  return { child, output: () => out };
}

describe('serve: a service process and its signals', () => {
  it('a SIGTERM while the service starts stops it gracefully once started (exit 0), not by the default action', async () => {
    const { child, output } = serveProcess(800);
    const exited = once(child, 'exit');
    await waitFor(() => `"starting" from the service, got: ${output()}`, () => output().includes('starting'));
    child.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(output().split('\n').filter(Boolean)).toEqual(['starting', 'started', 'stopped']);
  });

  it('a start still under way 5 s after the signal is ended by that signal, as without a handler', async () => {
    const { child, output } = serveProcess(30_000);
    const exited = once(child, 'exit');
    await waitFor(() => `"starting" from the service, got: ${output()}`, () => output().includes('starting'));
    const signalledAt = Date.now();
    child.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(4900);
    expect(output()).not.toContain('started');
  });

  it('a second signal while it starts ends it at once, non-zero', async () => {
    const { child, output } = serveProcess(30_000);
    const exited = once(child, 'exit');
    await waitFor(() => `"starting" from the service, got: ${output()}`, () => output().includes('starting'));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGINT');
    const [code] = await exited;
    expect(code).toBe(1);
    expect(output()).not.toContain('started');
  });
});

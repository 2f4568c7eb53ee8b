import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-process.js';
import { freePort } from '../support/ports.js';

describe('client commands without a broker', () => {
  it('each fails with one line naming the broker, and exit 1', async () => {
    const url = `mqtt://operator:not-shown@127.0.0.1:${await freePort()}`;
    const at = ['--mqtt-url', url];
    const commands = [
      ['status', ...at],
      ['sem', 'info', '--channel', 'ci', ...at],
      ['sem', 'run', '--channel', 'ci', '--timeout', '5', ...at, '--', 'true'],
      ['rollout', 'list', ...at],
      ['explain', '--repo', 'acme/web', '--branch', 'main', ...at],
      ['retry', '--agent', 'web-1', '--app', 'web', ...at],
    ];
    for (const args of commands) {
      const r = await runCli(args);
      const what = `pushfleet ${args.join(' ')}: ${r.stderr}`;
      expect(r.code, what).toBe(1);
      expect(r.stderr.trim().split('\n'), what).toHaveLength(1);
      expect(r.stderr, what).toMatch(new RegExp(`^pushfleet.*127\\.0\\.0\\.1:${new URL(url).port}`));
      expect(r.stderr, what).not.toContain('not-shown');
    }
  });
});

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function file(name: string, text: string): string {
  const path = join(cleanup.tempDir('pushfleet-config-check-'), name);
  writeFileSync(path, text);
  return path;
}

/** The lines after the header, exactly as a person reads them. */
function problems(stderr: string, path: string): string[] {
  const [header, ...rest] = stderr.trimEnd().split('\n');
  expect(header).toBe(`pushfleet: invalid config ${path}:`);
  return rest;
}

// Errors of every kind at once: a bad value, a wrong type, unknown keys, a missing required key,
// and the cross-field checks (branch/tag, retry delays, duplicate names, env label) that zod
// skipped while anything else was wrong.
const BROKEN_AGENT = `id: "bad id!"
mqtt: { url: "mqtt://127.0.0.1:1" }
labels: { env: "not one word" }
heartbeatSeconds: -1
bogus: 1
apps:
  - { name: web, repo: nope, path: /srv/web, restart: "systemctl restart web" }
  - { name: web, repo: acme/web, branch: main, tag: "v*", path: /srv/web2, restart: ["true"], retryDelay: 10, retryMaxDelay: 5 }
  - { name: api, repo: acme/api, branch: main, restart: ["true"], colour: red }
`;

const AGENT_PROBLEMS = [
  '  id: use letters, digits, ".", "_" or "-"',
  '  heartbeatSeconds: Too small: expected number to be >0',
  '  apps.0.repo: expected "owner/name"',
  '  apps.0.restart: Invalid input: expected array, received string',
  '  apps.0.branch: set exactly one of "branch" or "tag"',
  '  apps.1.branch: set exactly one of "branch" or "tag"',
  '  apps.1.retryMaxDelay: must be at least retryDelay',
  '  apps.2.path: Invalid input: expected string, received undefined',
  '  apps.2.colour: unknown key',
  '  apps.1.name: duplicate app name "web"',
  '  bogus: unknown key',
  '  labels.env: use 1-64 letters, digits, "_" or "-"',
];

describe('config errors, all at once', () => {
  it('agent --check and a plain agent start list every error of the file, one per line, exit 2', async () => {
    const path = file('agent.yaml', BROKEN_AGENT);
    for (const args of [['agent', '--check', '-c', path], ['agent', '-c', path]]) {
      const res = await runCli(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(problems(res.stderr, path)).toEqual(AGENT_PROBLEMS);
      expect(res.stdout).toBe('');
    }
  });

  it('an agent with no app says so next to its other errors', async () => {
    const path = file('agent.yaml', 'id: "a b"\nmqtt: { url: "mqtt://127.0.0.1:1" }\napps: []\n');
    const res = await runCli(['agent', '--check', '-c', path]);
    expect(res.code).toBe(2);
    expect(problems(res.stderr, path)).toEqual(['  id: use letters, digits, ".", "_" or "-"', '  apps: list at least one app (or configure orchestrator:, jobs: or services:)']);
  });

  it('hub --check and a plain hub start list every error, cross-field ones included', async () => {
    const path = file(
      'hub.yaml',
      `http: { port: "eighty" }
webhook: { path: hook, maxBodyBytes: 1000, maxBufferedBytes: 10 }
engines: { semaphore: { enabled: false }, rollouts: { enabled: true } }
broker: { persistence: disk }
extra: true
`,
    );
    const expected = [
      '  http.port: Invalid input: expected number, received string',
      '  webhook.path: Invalid string: must start with "/"',
      '  webhook.maxBufferedBytes: must be at least webhook.maxBodyBytes, or the largest body could never be read',
      '  broker.persistence: Invalid option: expected one of "sqlite"|"memory"',
      '  engines.rollouts.enabled: rollouts admit hosts through the semaphore: enable engines.semaphore or disable engines.rollouts',
      '  extra: unknown key',
    ];
    for (const args of [['hub', '--check', '-c', path], ['hub', '-c', path]]) {
      const res = await runCli(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(problems(res.stderr, path)).toEqual(expected);
    }
  });

  it('names the line and column of every YAML syntax error', async () => {
    const path = file('agent.yaml', 'mqtt: { url: "mqtt://x"\napps:\n  - name: web\n  name: again\n');
    const res = await runCli(['agent', '--check', '-c', path]);
    expect(res.code).toBe(2);
    const lines = problems(res.stderr, path);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(/^ {2}line \d+, column \d+: \S.*[^:]$/);
    expect(lines[0]).toMatch(/^ {2}line 2, column 1: Flow map .* end with a }$/);
  });

  it('commands that read only the mqtt section of a config report the same way', async () => {
    const path = file('agent.yaml', 'mqtt: { url: "http://x", keepalive: "often" }\n');
    const res = await runCli(['status', '-c', path]);
    expect(res.code).toBe(2);
    expect(problems(res.stderr, path)).toEqual(expect.arrayContaining([expect.stringMatching(/^ {2}mqtt\.url: /)]));
  });
});

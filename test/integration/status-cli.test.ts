import { createServer } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgentProcess } from '../support/agent-process.js';
import { linesOf, startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';
import { freePort } from '../support/ports.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/**
 * A real health endpoint, on a long path so the error is longer than a terminal line: 404 while
 * the app last restarted on `sick.sha` (the restart log's last line), else 200.
 */
async function healthServer(restartLog: () => string[]): Promise<{ url: string; sick: { sha?: string } }> {
  const sick: { sha?: string } = {};
  const server = createServer((_req, res) => res.writeHead(restartLog().at(-1) === sick.sha ? 404 : 200).end());
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  cleanup.defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${port}/internal/health/readiness-probe-for-the-web-frontend`, sick };
}

describe('pushfleet status shows the whole reason', () => {
  it('at 80 columns, with --wide and with --json, against a real hub and agent', async () => {
    const health: { url?: string; timeout: number; interval: number } = { timeout: 1, interval: 0.2 };
    const { git, hub, appConfig, reached, push, restartLog } = await startAppFixture(cleanup, 'aedes', { health });
    const endpoint = await healthServer(() => linesOf(restartLog));
    health.url = endpoint.url;
    await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: hub.mqttUrl, apps: [appConfig] });
    const good = git.commit('good', { 'app.txt': 'v1\n' });
    await push(good);
    await reached('deployed', good);
    const bad = git.commit('bad', { 'app.txt': 'v2\n' });
    endpoint.sick.sha = bad;
    await push(bad, good);
    const failed = await reached('rolled-back', good);
    const reason = `health: ${failed.lastError!.message}`;
    expect(reason).toMatch(/answered 404$/);
    expect(reason.length).toBeGreaterThan(80);

    // Fitted to 80 columns: every line fits, the error whole on the lines below its row.
    const narrow = await runCli(['status', '--mqtt-url', hub.mqttUrl], { COLUMNS: '80' });
    expect(narrow.code, narrow.stderr).toBe(0);
    const table = narrow.stdout.split('\n\nhub:')[0]!.split('\n');
    for (const line of table) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(table[1]).toMatch(new RegExp(`^node-1\\s+online\\s+\\S+%\\s+\\S+%\\s+web\\s+main\\s+${good.slice(0, 8)}\\s+rolled-back\\s+\\d+s ago$`));
    expect(table.slice(2).map((l) => l.replace(/^ {4}/, '')).join(' ')).toBe(reason);

    // --wide: one line per app whatever the width, whole SHAs.
    const wide = await runCli(['status', '--wide', '--mqtt-url', hub.mqttUrl], { COLUMNS: '80' });
    expect(wide.code, wide.stderr).toBe(0);
    const [header, row, end] = wide.stdout.split('\n');
    expect(header).toMatch(/^AGENT\s+STATUS\s+LOAD\s+MEM\s+APP\s+REF\s+SHA\s+STATE\s+UPDATED\s+ERROR$/);
    expect(row).toMatch(new RegExp(`^node-1\\s+online\\s+.*\\s+${good}\\s+rolled-back\\s+\\d+s ago\\s+`));
    expect(row!.endsWith(`  ${reason}`)).toBe(true);
    expect(end).toBe('');

    // --json: one document, the hub's status and every app state whole.
    const json = await runCli(['status', '--json', '--mqtt-url', hub.mqttUrl]);
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout);
    expect(Object.keys(doc)).toEqual(['v', 'hub', 'agents']);
    expect(doc).toMatchObject({ v: 1, hub: { state: 'online' }, agents: { 'node-1': { status: { state: 'online' }, apps: { web: { state: 'rolled-back', sha: good, targetSha: bad, lastError: { step: 'health', message: failed.lastError!.message } } } } } });
    expect(doc.agents['node-1'].heartbeat.host.memTotalBytes).toBeGreaterThan(0);
  });
});

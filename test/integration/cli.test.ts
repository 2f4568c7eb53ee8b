import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { recordingRestart, startAgentProcess } from '../support/agent-process.js';
import { harnessUrl } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { CliProcess, runCli } from '../support/cli-process.js';
import { GitFixture } from '../support/git-fixture.js';
import { freePort } from '../support/ports.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { waitFor } from '../support/wait.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const tempDir = () => cleanup.tempDir('pushfleet-cli-');

async function startHubProcess(stateDir: string) {
  const [port, brokerPort] = [await freePort(), await freePort()];
  const mqttUrl = await harnessUrl(stateDir, `mqtt://127.0.0.1:${brokerPort}`);
  const hub = new CliProcess(['hub', '--port', String(port), '--broker-port', String(brokerPort), '--state-dir', stateDir, '--host', '127.0.0.1'], { PUSHFLEET_WEBHOOK_SECRET: '' });
  cleanup.defer(() => hub.stop('SIGKILL'));
  await hub.waitForLog('webhook listening', (l) => l.msg === 'webhook listening');
  return { hub, webhook: `http://127.0.0.1:${port}/webhook`, mqttUrl };
}

describe('pushfleet CLI', () => {
  it('runs the hub on embedded defaults, generating and printing a secret once', async () => {
    const stateDir = tempDir();
    const first = await startHubProcess(stateDir);
    const secretFile = join(stateDir, 'webhook-secret');
    const secret = readFileSync(secretFile, 'utf8').trim();
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    expect(first.hub.stderr).toContain(secret);
    expect(first.hub.stderr).toContain('Settings → Webhooks');
    // The signing key too: made on first start (private half 0600), its hub.pub named for the agents.
    const pub = join(stateDir, 'hub.pub');
    expect(statSync(join(stateDir, 'hub.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(pub, 'utf8')).toContain('BEGIN PUBLIC KEY');
    // Written to stderr right after the "webhook listening" log line on stdout: the two pipes race.
    await waitFor(() => `the hub.pub notice on stderr:\n${first.hub.stderr}`, () => first.hub.stderr.includes(`copy ${pub} to each agent host`));

    const push = await postWebhook(first.webhook, signedRequest(secret, 'push', githubPushPayload({ after: 'd'.repeat(40) })));
    expect(push.status).toBe(200);
    expect(await first.hub.stop('SIGTERM')).toBe(0);
    expect(first.hub.lines.some((l) => l.msg === 'hub stopped')).toBe(true);

    const second = await startHubProcess(stateDir);
    expect(second.hub.stderr).not.toContain(secret);
    expect(second.hub.stderr).not.toContain('hub.pub');
    expect(await second.hub.stop('SIGTERM')).toBe(0);
  });

  it('prints agents and apps with `status`', async () => {
    const stateDir = tempDir();
    const { mqttUrl, webhook } = await startHubProcess(stateDir);
    const git = new GitFixture();
    cleanup.defer(() => git.remove());
    const app = { name: 'api', repo: 'acme/api', branch: 'main', path: git.workdir('api'), remote: git.bare, restart: recordingRestart(join(git.root, 'r.log')) };
    await startAgentProcess(cleanup, { id: 'db-7', mqttUrl, hubPublicKey: join(stateDir, 'hub.pub'), labels: { env: 'demo' }, apps: [app] });
    const secret = readFileSync(join(stateDir, 'webhook-secret'), 'utf8').trim();
    const sha = git.commit('change', { 'app.txt': 'v1\n' });
    expect((await postWebhook(webhook, signedRequest(secret, 'push', githubPushPayload({ repo: 'acme/api', after: sha })))).status).toBe(200);

    const table = await waitFor('status to show the deployed app', async () => {
      const res = await runCli(['status', '--mqtt-url', mqttUrl]);
      return res.code === 0 && res.stdout.includes('deployed') ? res.stdout : undefined;
    });
    const [header, row] = table.trim().split('\n');
    expect(header).toMatch(/^AGENT\s+STATUS\s+LOAD\s+MEM\s+APP\s+REF\s+SHA\s+STATE/);
    expect(row).toMatch(new RegExp(`^db-7\\s+online\\s+\\S+%\\s+\\S+%\\s+api\\s+main\\s+${sha.slice(0, 8)}\\s+deployed`));
    expect(table).toMatch(/^hub: online since \S+ \(pushfleet \S+\)$/m);

    const json = JSON.parse((await runCli(['status', '--json', '--mqtt-url', mqttUrl])).stdout);
    expect(json.agents['db-7']).toMatchObject({ status: { state: 'online', labels: { env: 'demo' } }, apps: { api: { sha, state: 'deployed' } } });
    expect(json.agents['db-7'].heartbeat.host.memTotalBytes).toBeGreaterThan(0);
  });

  it('fails `status` with a clear message when no broker answers', async () => {
    const res = await runCli(['status', '--mqtt-url', `mqtt://127.0.0.1:${await freePort()}`, '--wait', '1']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/cannot reach the broker at mqtt:\/\/127\.0\.0\.1:\d+/);
  });

  it('exits 2 naming the bad key for an invalid config, 0 for --check on a valid one', async () => {
    const dir = tempDir();
    const bad = join(dir, 'agent.yaml');
    writeFileSync(bad, 'mqtt: { url: "mqtt://x" }\napps:\n  - { name: web, repo: acme/web, branch: main, path: /srv/web, restart: "systemctl restart web" }\n');
    const res = await runCli(['agent', '--config', bad]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/apps\.0\.restart/);

    const hubBad = join(dir, 'hub.yaml');
    writeFileSync(hubBad, 'http: { port: "eighty" }\n');
    const hubRes = await runCli(['hub', '--config', hubBad]);
    expect(hubRes.code).toBe(2);
    expect(hubRes.stderr).toMatch(/http\.port/);

    const check = await runCli(['agent', '--check', '--config', new URL('../../config/agent.example.yaml', import.meta.url).pathname]);
    expect(check).toMatchObject({ code: 0, stdout: expect.stringContaining('valid (agent web-1, 2 app(s))') });
    expect((await runCli(['hub', '--port', 'x'])).code).toBe(2);
  });

  it.each(['hub', 'agent', 'status', 'notify', 'sem run', 'play', 'explain', 'rollout', 'rollout status', 'rollout pin', 'retry'])('answers --help for %s', async (cmd) => {
    const res = await runCli([...cmd.split(' '), '--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`Usage: pushfleet ${cmd}`);
  });
});

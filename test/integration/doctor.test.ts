import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { agentLogin } from '../support/agent-process.js';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';
import { GitFixture } from '../support/git-fixture.js';
import { freePort } from '../support/ports.js';
import { hubKeyFor } from '../support/signer.js';
import { BROKERS, startTestHub, type BrokerKind } from '../support/test-hub.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** The fixture's repository as app `name` on host `id`, following `branch`. */
const app = (git: GitFixture, id: string, name: string, branch = 'main', remote = git.bare) => ({ name, repo: 'acme/web', branch, path: git.workdir(`${id}-${name}`), remote, restart: ['true'] });

/** A test hub on `kind`, a git fixture as the apps' remote, and a temp dir for the agent's config. */
async function host(kind: BrokerKind) {
  const hub = await startTestHub(cleanup, kind);
  const git = new GitFixture();
  cleanup.defer(() => git.remove());
  return { hub, git, dir: cleanup.tempDir('pushfleet-doctor-') };
}

/** A finished doctor run, with its line for a check (or, to fail an assertion readably, everything it printed). */
const withLines = (run: { code: number | null; stdout: string; stderr: string }) => ({
  ...run,
  line: (check: string) => run.stdout.split('\n').find((l) => new RegExp(`^\\S+ +${check} `).test(l)) ?? `(no "${check}" line)\n${run.stdout}${run.stderr}`,
});

/** Writes an agent config for host `id` and runs `pushfleet doctor` on it. */
async function doctor(dir: string, config: Record<string, unknown>, ...flags: string[]) {
  const file = join(dir, `${String(config.id)}.yaml`);
  writeFileSync(file, stringify({ stateDir: join(dir, 'state'), ...config }));
  const run = await runCli(['doctor', '-c', file, '--timeout', '5', ...flags]);
  return withLines(run);
}

describe.each(BROKERS)('pushfleet doctor (%s)', (kind) => {
  it('passes every check on a good host, exit 0', async () => {
    const { hub, git, dir } = await host(kind);
    const mqtt = await agentLogin(hub.mqttUrl, 'good-1', dir);
    const run = await doctor(dir, { id: 'good-1', mqtt, hubPublicKey: hubKeyFor(hub.mqttUrl), apps: [app(git, 'good-1', 'web')] });

    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.line('config')).toMatch(/^ok +config +.*agent good-1, 1 app\(s\)$/);
    expect(run.line('hub key')).toMatch(/^ok +hub key +.*hub\.pub holds the Ed25519 key [0-9a-f]{16}$/);
    expect(run.line('broker')).toMatch(/^ok +broker +.*accepts this login \(as good-1\)$/);
    expect(run.line('subscriptions')).toMatch(/^ok +subscriptions +5 filter\(s\)/);
    expect(run.line('clock')).toMatch(/^ok +clock +offset to the hub -?\d/);
    expect(run.line('app web path')).toMatch(/^ok +app web path +.*does not exist yet: the agent clones it/);
    expect(run.line('app web remote')).toMatch(/^ok +app web remote +.*answers git ls-remote$/);
    expect(run.line('app web branch')).toMatch(/^ok +app web branch +branch "main" on the remote: main$/);
    // A CI machine may run systemd without the unit installed; a container has none.
    expect(run.line('systemd')).toMatch(/^(ok|warn|skip) +systemd /);
    expect(run.stdout).not.toMatch(/^FAIL/m);

    // Once the app is cloned (as the agent does), its path is a work tree at the pushed commit.
    execFileSync('git', ['clone', '--quiet', git.bare, app(git, 'good-1', 'web').path]);
    const json = await doctor(dir, { id: 'good-1', mqtt, hubPublicKey: hubKeyFor(hub.mqttUrl), apps: [app(git, 'good-1', 'web')] }, '--json');
    expect(json.code, json.stdout + json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as { ok: boolean; checks: { check: string; verdict: string; detail: string }[] };
    expect(parsed.ok).toBe(true);
    expect(parsed.checks.map((c) => c.check)).toEqual(['config', 'hub key', 'broker', 'subscriptions', 'clock', 'app web path', 'app web remote', 'app web branch', 'systemd']);
    expect(parsed.checks[5]).toMatchObject({ verdict: 'ok', detail: expect.stringMatching(new RegExp(`is a git work tree at ${git.head().slice(0, 12)}$`)) });
  });

  it("fails the subscriptions check when the login is another agent's account, exit 1", async () => {
    const { hub, git, dir } = await host(kind);
    // Logs in as web-2 but says it is web-3: the broker lets it read only web-2's topics.
    const mqtt = await agentLogin(hub.mqttUrl, 'web-2', dir);
    const run = await doctor(dir, { id: 'web-3', mqtt, hubPublicKey: hubKeyFor(hub.mqttUrl), apps: [app(git, 'web-3', 'web')] });

    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.line('broker')).toMatch(/^ok +broker /);
    expect(run.line('subscriptions')).toMatch(/^FAIL +subscriptions +.*this login is web-2 but the agent's id is web-3/);
    // aedes refuses them in its SUBACK; mosquitto grants them and delivers nothing.
    if (kind === 'aedes') expect(run.line('subscriptions')).toMatch(/the broker refused pushfleet\/agents\/web-3\/pins\/\+, .*pushfleet\/orchestrator\/time\/reply\/web-3/);
  });
});

describe('pushfleet doctor on a broken host', () => {
  it('names each problem on its own FAIL line, exit 1', async () => {
    const { hub, git, dir } = await host('aedes');
    const mqtt = await agentLogin(hub.mqttUrl, 'bad-1', dir);
    const wrongPassword = join(dir, 'wrong-password');
    writeFileSync(wrongPassword, 'not-the-password\n', { mode: 0o600 });
    const run = await doctor(dir, {
      id: 'bad-1',
      mqtt: { ...mqtt, passwordFile: wrongPassword },
      hubPublicKey: join(dir, 'missing', 'hub.pub'),
      apps: [
        app(git, 'bad-1', 'web', 'release'),
        app(git, 'bad-1', 'api', 'main', join(dir, 'no-such-remote.git')),
        // A token in the remote URL, nothing listening there.
        app(git, 'bad-1', 'tok', 'main', `http://ci:s3cret-token@127.0.0.1:${await freePort()}/acme/web.git`),
      ],
    });

    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.line('config')).toMatch(/^ok +config /);
    expect(run.line('hub key')).toMatch(/^FAIL +hub key +hubPublicKey: cannot use .*missing\/hub\.pub: ENOENT$/);
    expect(run.line('broker')).toMatch(/^FAIL +broker +.* refused the login of user bad-1 \(bad user name or password\)/);
    expect(run.line('subscriptions')).toMatch(/^skip +subscriptions +needs the broker$/);
    expect(run.line('clock')).toMatch(/^skip +clock /);
    expect(run.line('app web remote')).toMatch(/^ok +app web remote /);
    expect(run.line('app web branch')).toMatch(/^FAIL +app web branch +no branch matching "release" on the remote \(it has 1 branches\)/);
    expect(run.line('app api remote')).toMatch(/^FAIL +app api remote +git ls-remote .*no-such-remote\.git exited with status 128: fatal: .*no-such-remote\.git/);
    expect(run.line('app api branch')).toMatch(/^skip +app api branch /);
    expect(run.line('app tok remote')).toMatch(/^FAIL +app tok remote +git ls-remote http:\/\/ci:\*\*\*@127\.0\.0\.1:\d+\/acme\/web\.git exited with status 128: fatal: /);
    expect(run.stdout + run.stderr).not.toMatch(/not-the-password|s3cret-token/);
  });

  it('tells an unreachable broker from a refused login, and an invalid config stops the checks that need it', async () => {
    const dir = cleanup.tempDir('pushfleet-doctor-');
    const git = new GitFixture();
    cleanup.defer(() => git.remove());
    const port = await freePort();
    const down = await doctor(dir, { id: 'far-1', mqtt: { url: `mqtt://127.0.0.1:${port}` }, acceptUnsigned: true, apps: [app(git, 'far-1', 'web')] });
    expect(down.code, down.stdout + down.stderr).toBe(1);
    expect(down.line('broker')).toMatch(new RegExp(`^FAIL +broker +mqtt://127\\.0\\.0\\.1:${port} unreachable \\(ECONNREFUSED`));
    expect(down.line('hub key')).toMatch(/^warn +hub key +no hubPublicKey and acceptUnsigned: true/);
    const noFile = await doctor(dir, { id: 'far-3', mqtt: { url: `mqtt://127.0.0.1:${port}`, username: 'far-3', passwordFile: join(dir, 'gone') }, acceptUnsigned: true, apps: [app(git, 'far-3', 'web')] });
    expect(noFile.line('broker')).toMatch(/^FAIL +broker +cannot read mqtt\.passwordFile .*gone: ENOENT$/);

    const invalid = await doctor(dir, { id: 'far-2', mqtt: { url: 'http://nowhere' }, apps: [{ name: 'web', repo: 'acme/web', path: '/srv/web', restart: ['true'] }] });
    expect(invalid.code, invalid.stdout + invalid.stderr).toBe(1);
    expect(invalid.line('config')).toMatch(/^FAIL +config +invalid config .*far-2\.yaml:$/);
    expect(invalid.stdout).toMatch(/^ +mqtt\.url: expected mqtt:\/\//m);
    expect(invalid.stdout).toMatch(/apps\.0\.branch: set exactly one of "branch" or "tag"/);
    expect(invalid.stdout).toContain('the checks that need the config were not run');
    expect(invalid.stdout).not.toMatch(/^\S+ +broker /m);
    expect(invalid.line('systemd')).toMatch(/^(ok|warn|skip|FAIL) +systemd /);
  });
});

describe('pushfleet doctor --hub', () => {
  it("passes on the running hub's own ports, fails a port another process holds and a missing signing key", async () => {
    const hub = await startTestHub(cleanup, 'aedes');
    const dir = cleanup.tempDir('pushfleet-doctor-hub-');
    const brokerPort = Number(new URL(hub.mqttUrl).port);
    const hubDoctor = async (name: string, config: Record<string, unknown>) => {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, stringify(config));
      const run = await runCli(['doctor', '--hub', '-c', file, '--timeout', '5']);
      return withLines(run);
    };

    const running = await hubDoctor('running', { stateDir: hub.stateDir, http: { host: '127.0.0.1', port: hub.httpPort }, broker: { port: brokerPort } });
    expect(running.code, running.stdout + running.stderr).toBe(0);
    expect(running.line('config')).toMatch(/^ok +config /);
    expect(running.line('state dir')).toMatch(/^ok +state dir +.* is writable$/);
    expect(running.line('http port')).toMatch(new RegExp(`^ok +http port +127\\.0\\.0\\.1:${hub.httpPort} is in use by the running hub`));
    expect(running.line('broker port')).toMatch(new RegExp(`^ok +broker port +127\\.0\\.0\\.1:${brokerPort} is in use by the running hub`));

    // A port held by something that is not a hub.
    const sockets = new Set<Socket>();
    const squatter = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    cleanup.defer(() => new Promise((resolve) => (squatter.close(resolve), sockets.forEach((s) => s.destroy()))));
    const taken = (squatter.address() as AddressInfo).port;
    const free = await freePort();
    const busy = await hubDoctor('busy', { stateDir: join(dir, 'new-state'), http: { host: '127.0.0.1', port: taken }, broker: { port: free } });
    expect(busy.code, busy.stdout + busy.stderr).toBe(1);
    expect(busy.line('state dir')).toMatch(/^ok +state dir +.*new-state does not exist yet: the hub creates it/);
    expect(busy.line('http port')).toMatch(new RegExp(`^FAIL +http port +127\\.0\\.0\\.1:${taken} is taken by another process: stop it or change http\\.port$`));
    expect(busy.line('broker port')).toMatch(new RegExp(`^ok +broker port +127\\.0\\.0\\.1:${free} is free`));

    const noKey = await hubDoctor('no-key', { stateDir: dir, signing: { key: join(dir, 'missing.key') } });
    expect(noKey.code).toBe(1);
    expect(noKey.line('config')).toMatch(/^FAIL +config +signing\.key: cannot use .*missing\.key/);
  });
});

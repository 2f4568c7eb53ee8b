import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { agentStatusTopic, HUB_STATUS } from '../../src/shared/topics.js';
import { addBrokerUser, HARNESS, usersFileFor, withCredentials, withoutCredentials } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { CLI, runCli } from '../support/cli-process.js';
import { RestartableHub } from '../support/restartable-hub.js';
import { runProcess, show } from '../support/run-process.js';
import { waitFor } from '../support/wait.js';

const plain = withoutCredentials;
const as = withCredentials;

/** Connects once (no retries): the client, or the CONNACK code that refused it. */
async function tryConnect(cleanup: Cleanup, url: string, opts: IClientOptions = {}): Promise<{ client?: MqttClient; refused?: number }> {
  try {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    cleanup.defer(() => client.endAsync(true));
    return { client };
  } catch (err) {
    return { refused: (err as { code?: number }).code ?? -1 };
  }
}

const closed = (client: MqttClient): Promise<void> => new Promise((resolve) => (client.connected ? client.once('close', () => resolve()) : resolve()));

async function startHub(cleanup: Cleanup, broker: Record<string, unknown> = {}, stateDir?: string): Promise<RestartableHub> {
  if (stateDir) mkdirSync(stateDir, { recursive: true });
  const hub = await RestartableHub.create(cleanup, undefined, { broker, stateDir });
  await hub.start();
  return hub;
}

const logText = (hub: RestartableHub) => hub.proc!.stdout + hub.proc!.stderr;

describe('broker authentication on the embedded broker', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('refuses anonymous clients on loopback too; broker.allowAnonymous lets them in, warned about at every start', async () => {
    const closedHub = await startHub(cleanup);
    expect(await tryConnect(cleanup, plain(closedHub.mqttUrl))).toEqual({ refused: 5 });
    await closedHub.proc!.waitForLog('anonymous refusal', (l) => l.msg === 'broker refused an anonymous client (broker.allowAnonymous is off)' && l.address === '127.0.0.1');
    expect(closedHub.proc!.lines.some((l) => /allowAnonymous is on/.test(l.msg))).toBe(false);

    const open = await startHub(cleanup, { allowAnonymous: true });
    const warned = (l: Record<string, any>) => l.level === 40 && /broker\.allowAnonymous is on/.test(l.msg);
    await open.proc!.waitForLog('anonymous warning', warned);
    const anon = await tryConnect(cleanup, plain(open.mqttUrl));
    expect(anon.client).toBeDefined();
    await open.kill();
    await open.start();
    await open.proc!.waitForLog('anonymous warning after a restart', warned);
  });

  it('refuses a wrong password and an unknown name, logging name and address but never the password', async () => {
    const hub = await startHub(cleanup);
    expect(await tryConnect(cleanup, as(hub.mqttUrl, HARNESS, 'wrong-password-123'))).toEqual({ refused: 4 });
    expect(await tryConnect(cleanup, as(hub.mqttUrl, 'nobody', 'guess-password-456'))).toEqual({ refused: 4 });
    expect((await tryConnect(cleanup, hub.mqttUrl)).client).toBeDefined();
    // One line per address every 10 s, however many tries: a guesser cannot flood the log.
    const refusal = await hub.proc!.waitForLog('a refused login', (l) => l.msg === 'broker refused a login');
    expect([refusal.user, refusal.reason, refusal.address, refusal.failures]).toEqual([HARNESS, 'wrong password', '127.0.0.1', 1]);
    const text = logText(hub);
    for (const secret of ['wrong-password-123', 'guess-password-456', new URL(hub.mqttUrl).password]) expect(text).not.toContain(secret);
  });

  it('a viewer account reads the HTTP API with its token but may not log in to the broker', async () => {
    const hub = await startHub(cleanup);
    const password = await addBrokerUser(usersFileFor(hub.mqttUrl)!, 'vera', 'viewer');
    // Both readers of the users file (the broker's and the API's) have taken the new account.
    await waitFor('the hub knows vera', () => hub.proc!.lines.filter((l) => l.msg === 'users file reloaded').length >= 2);
    const read = await fetch(new URL('/api/v1/services', hub.webhookUrl), { headers: { authorization: `Bearer vera:${password}` } });
    expect([read.status, await read.json()]).toEqual([200, { items: [], total: 0, offset: 0, limit: 50 }]);
    const act = await fetch(new URL('/api/v1/services', hub.webhookUrl), { method: 'POST', headers: { authorization: `Bearer vera:${password}`, 'content-type': 'application/json' }, body: '{}' });
    expect([act.status, await act.json()]).toEqual([403, { error: 'user "vera" is a viewer: this takes an operator', code: 'forbidden' }]);
    expect(await tryConnect(cleanup, as(hub.mqttUrl, 'vera', password))).toEqual({ refused: 5 });
    await hub.proc!.waitForLog('the viewer refusal', (l) => l.msg === 'broker refused a login: viewer accounts are for the HTTP API only' && l.client === 'vera');
  });

  it('makes the operator credential once, mode 0600, and commands on the same host find it', async () => {
    const stateDir = join(cleanup.tempDir('pushfleet-xdg-'), 'pushfleet');
    const hub = await startHub(cleanup, {}, stateDir);
    const file = join(stateDir, 'operator.credentials');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const creds = JSON.parse(readFileSync(file, 'utf8'));
    expect(creds.username).toBe('operator');
    // Printed once on the terminal (stderr), once the start is done; never in a log line.
    await waitFor('the password on the terminal', () => hub.proc!.stderr.includes(creds.password));
    expect(hub.proc!.stdout).not.toContain(creds.password);
    await hub.kill();
    await hub.start();
    expect(hub.proc!.stderr).not.toContain('created the broker account');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(creds);

    // -c hub.yaml: its stateDir and its broker port; no -c: the default state dir (XDG_STATE_HOME here).
    const viaConfig = await runCli(['status', '-c', hub.configFile]);
    expect(viaConfig.code, viaConfig.stderr).toBe(0);
    expect(viaConfig.stdout).toMatch(/hub: online since/);
    const viaDefault = await runCli(['status', '--mqtt-url', plain(hub.mqttUrl)], { XDG_STATE_HOME: join(stateDir, '..') });
    expect(viaDefault.code, viaDefault.stderr).toBe(0);
    expect(viaDefault.stdout + viaDefault.stderr).not.toContain(creds.password);
    // Elsewhere (no readable credential) the command fails with one line naming what it tried.
    const nowhere = await runCli(['status', '--mqtt-url', plain(hub.mqttUrl)], { XDG_STATE_HOME: cleanup.tempDir('pushfleet-empty-') });
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr.trim().split('\n')).toHaveLength(1);
    expect(nowhere.stderr).toMatch(/refused the login .*credentials from none/);
  });

  it('takes CLI credentials from the URL, the environment or a password file, and never prints them', async () => {
    const hub = await startHub(cleanup);
    const { username, password } = JSON.parse(readFileSync(join(hub.stateDir, 'operator.credentials'), 'utf8'));
    const url = plain(hub.mqttUrl);
    const isolated = { XDG_STATE_HOME: cleanup.tempDir('pushfleet-empty-') };
    const passwordFile = join(hub.stateDir, 'op-password');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    const config = join(hub.stateDir, 'client.yaml');
    writeFileSync(config, `mqtt:\n  url: ${url}\n  username: ${username}\n  passwordFile: ${passwordFile}\n`);
    const runs = [
      await runCli(['status', '--mqtt-url', as(url, username, password)], isolated),
      await runCli(['status', '--mqtt-url', url], { ...isolated, PUSHFLEET_MQTT_USERNAME: username, PUSHFLEET_MQTT_PASSWORD: password }),
      await runCli(['status', '-c', config], isolated),
    ];
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/hub: online/);
      expect(r.stdout + r.stderr).not.toContain(password);
    }
    const wrong = await runCli(['status', '--mqtt-url', as(url, username, 'not-the-password-789')], isolated);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`the broker at ${url} refused the login`);
    expect(wrong.stderr).toContain('credentials from the user in --mqtt-url');
    expect(wrong.stderr).not.toContain('not-the-password-789');
    // The hub's log lines (its terminal showed the generated password once, at creation).
    for (const secret of [password, 'not-the-password-789']) expect(hub.proc!.stdout).not.toContain(secret);
  });

  it('users add, ls and rm manage accounts of a live hub: a new account works at once, rm closes its session', async () => {
    const hub = await startHub(cleanup);
    const c = ['-c', hub.configFile];
    const added = await runCli(['users', 'add', 'web-1', '--role', 'agent', ...c]);
    expect(added.code, show({ ...added, signal: null })).toBe(0);
    const password = /password \(shown only now\): (\S+)/.exec(added.stdout)![1]!;
    expect(added.stdout).toContain('username: web-1');
    expect(added.stdout).toContain('passwordFile:');
    expect(added.stdout).toMatch(/hubPublicKey: .*hub\.pub/);
    const agent = await waitFor('web-1 let in', async () => (await tryConnect(cleanup, as(hub.mqttUrl, 'web-1', password))).client);
    // Its own status it may publish; the hub's it may not.
    await agent.publishAsync(agentStatusTopic('web-1'), JSON.stringify({ v: 1, agent: 'web-1', state: 'online', labels: {}, version: 'x', startedAt: new Date().toISOString(), at: new Date().toISOString() }), { qos: 1, retain: true });

    const fromStdin = await runProcess(process.execPath, [CLI, 'users', 'add', 'ci-runner', '--role', 'client', '--password-stdin', ...c], { input: 'a-chosen-password-0\n' });
    expect(fromStdin.code, show(fromStdin)).toBe(0);
    expect(fromStdin.stdout).not.toContain('a-chosen-password-0');
    expect((await waitFor('ci-runner let in', async () => (await tryConnect(cleanup, as(hub.mqttUrl, 'ci-runner', 'a-chosen-password-0'))).client))).toBeDefined();

    const listed = await runCli(['users', 'ls', ...c]);
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n')[0]).toMatch(/^NAME\s+ROLE\s+CREATED$/);
    for (const row of [/ci-runner\s+client/, /harness\s+hub/, /operator\s+operator/, /web-1\s+agent/]) expect(listed.stdout).toMatch(row);
    expect(listed.stdout).not.toMatch(/scrypt|salt|hash/);
    expect(readFileSync(usersFileFor(hub.mqttUrl)!, 'utf8')).not.toContain(password);

    expect((await runCli(['users', 'add', 'web-1', '--role', 'agent', ...c])).code).toBe(1);
    const bad = await runCli(['users', 'add', 'a/b', '--role', 'agent', ...c]);
    expect(bad.code).toBe(2);
    expect((await runCli(['users', 'add', 'x1', '--role', 'root', ...c])).code).toBe(2);
    expect((await runCli(['users', 'rm', 'nobody', ...c])).code).toBe(1);

    const gone = closed(agent);
    const removed = await runCli(['users', 'rm', 'web-1', ...c]);
    expect(removed.code, removed.stderr).toBe(0);
    await gone;
    expect(await tryConnect(cleanup, as(hub.mqttUrl, 'web-1', password))).toEqual({ refused: 4 });
    expect((await runCli(['users', 'ls', ...c])).stdout).not.toContain('web-1');
    for (const cmd of [['users', '--help'], ['users', 'add', '--help'], ['users', 'rm', '--help'], ['users', 'ls', '--help']]) expect((await runCli(cmd)).code).toBe(0);
  });

  it('a harness client reads the hub status (sanity: the harness account is what other tests use)', async () => {
    const hub = await startHub(cleanup);
    const { client } = await tryConnect(cleanup, hub.mqttUrl);
    const got = new Promise<string>((resolve) => client!.on('message', (_t, p) => resolve(p.toString())));
    await client!.subscribeAsync(HUB_STATUS, { qos: 1 });
    expect(JSON.parse(await got).state).toBe('online');
  });
});

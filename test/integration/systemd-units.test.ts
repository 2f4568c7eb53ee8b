import { accessSync, chmodSync, constants, readFileSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { startNotifySocket } from '../support/notify-socket.js';
import { freePort } from '../support/ports.js';
import { runProcess, show, startService } from '../support/run-process.js';
import { waitFor } from '../support/wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
const UNITS = ['pushfleet-hub.service', 'pushfleet-agent.service'] as const;
/** Where `npm install -g` puts the command (npm's global prefix is /usr with Debian's node). */
const INSTALLED = '/usr/bin/pushfleet';
const CHECKOUT_CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** Not skipped when missing: CI installs it (Debian package "systemd"), so absence is a failure. */
function systemdAnalyze(): string {
  const dirs = ['/usr/bin', '/bin', ...(process.env.PATH ?? '').split(delimiter)];
  for (const dir of dirs) {
    const file = join(dir, 'systemd-analyze');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // keep looking
    }
  }
  throw new Error('systemd-analyze is not installed (Debian package "systemd"); .ci/install-deps installs it');
}

type Unit = Map<string, string[]>;

/** "Section.Key" → every value assigned to it, in order (enough for our own unit files). */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    const key = `${section}.${line.slice(0, eq)}`;
    unit.set(key, [...(unit.get(key) ?? []), line.slice(eq + 1)]);
  }
  return unit;
}

const read = (name: string) => readFileSync(join(ROOT, 'systemd', name), 'utf8');
const one = (unit: Unit, key: string) => unit.get(key)?.at(-1);

/**
 * What npm's bin link is: an executable that runs this checkout's CLI (exec keeps the pid, so
 * READY=1 still comes from the main process).
 */
function installedCommand(dir: string): string {
  const file = join(dir, 'pushfleet');
  writeFileSync(file, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CHECKOUT_CLI)} "$@"\n`);
  chmodSync(file, 0o755);
  return file;
}

/** The unit's ExecStart= argv, with the installed command standing for this checkout's CLI. */
function execStart(unit: Unit, dir: string): string[] {
  return one(unit, 'Service.ExecStart')!.replace(INSTALLED, installedCommand(dir)).split(/\s+/);
}

/** The unit's Environment= assignments as an object. */
function environment(unit: Unit): Record<string, string> {
  return Object.fromEntries((unit.get('Service.Environment') ?? []).flatMap((v) => v.split(/\s+/)).map((kv) => kv.split('=', 2) as [string, string]));
}

describe('systemd units', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const tempDir = () => cleanup.tempDir('pushfleet-systemd-');

  /**
   * `systemd-analyze verify` on a copy whose ExecStart runs this checkout's CLI instead of
   * /usr/bin/pushfleet. verify exits 0 even for unknown keys or unparsable values (it only logs
   * them), so the meaningful check is "nothing logged about this file".
   */
  async function verify(name: string, text: string) {
    const dir = tempDir();
    const file = join(dir, name);
    writeFileSync(file, text.replace(INSTALLED, installedCommand(dir)));
    const result = await runProcess(systemdAnalyze(), ['verify', file], { env: { ...process.env, SYSTEMD_LOG_LEVEL: 'info', SYSTEMD_PAGER: '' } });
    const aboutUnit = `${result.stdout}\n${result.stderr}`.split('\n').filter((l) => l.includes(name) || l.includes(dir));
    return { result, aboutUnit };
  }

  it.each(UNITS)('%s passes systemd-analyze verify without a single warning', async (name) => {
    const { result, aboutUnit } = await verify(name, read(name));
    expect(result.code, show(result)).toBe(0);
    expect(aboutUnit, show(result)).toEqual([]);
    // verify checks that the executable exists; the CLI it stands for must too.
    accessSync(CHECKOUT_CLI, constants.R_OK);
  });

  it('verify would catch a broken unit (the check above is not vacuous)', async () => {
    const broken = read('pushfleet-hub.service').replace('RestartSec=5', 'RestartSec=five').replace('ProtectHome=yes', 'ProtectHome=yes\nProtectHomes=yes');
    const { aboutUnit } = await verify('pushfleet-hub.service', broken);
    expect(aboutUnit.join('\n')).toMatch(/RestartSec|five/);
    expect(aboutUnit.join('\n')).toContain("Unknown key 'ProtectHomes'");
  });

  it.each(UNITS)('%s has the service settings the install guide relies on', (name) => {
    const unit = parseUnit(read(name));
    const kind = name.includes('hub') ? 'hub' : 'agent';
    // READY=1 once serving, WATCHDOG=1 from the event loop, only from the main process.
    expect(one(unit, 'Service.Type')).toBe('notify');
    expect(one(unit, 'Service.NotifyAccess')).toBe('main');
    expect(one(unit, 'Service.WatchdogSec')).toBe('30');
    expect(one(unit, 'Service.ExecStart')).toBe(`${INSTALLED} ${kind} --config /etc/pushfleet/${kind}.yaml`);
    expect(one(unit, 'Service.User')).toBe(`pushfleet-${kind}`);
    expect(one(unit, 'Service.Group')).toBe(`pushfleet-${kind}`);
    expect(one(unit, 'Service.Restart')).toBe('on-failure');
    expect(one(unit, 'Service.RestartSec')).toBe('5');
    expect(one(unit, 'Service.KillSignal')).toBe('SIGTERM');
    expect(one(unit, 'Service.EnvironmentFile')).toBe('-/etc/pushfleet/%N.env');
    expect(environment(unit)).toMatchObject({ NODE_ENV: 'production' });
    expect(one(unit, 'Install.WantedBy')).toBe('multi-user.target');
  });

  it('hardens the hub strongly, but leaves Node its JIT', async () => {
    const unit = parseUnit(read('pushfleet-hub.service'));
    expect(one(unit, 'Service.NoNewPrivileges')).toBe('yes');
    expect(one(unit, 'Service.ProtectSystem')).toBe('strict');
    expect(one(unit, 'Service.StateDirectory')).toBe('pushfleet');
    expect(one(unit, 'Service.RestrictAddressFamilies')).toBe('AF_INET AF_INET6 AF_UNIX');
    // V8 maps W+X memory; with this set, node aborts at start-up.
    expect(unit.has('Service.MemoryDenyWriteExecute')).toBe(false);
    // systemd's own score (the threshold is in tenths): 1.4 before this review, 1.2 after.
    const result = await runProcess(systemdAnalyze(), ['security', '--offline=true', '--threshold=12', '--no-pager', join(ROOT, 'systemd', 'pushfleet-hub.service')]);
    expect(result.code, show(result)).toBe(0);
  });

  it('keeps sudo usable for the agent: nothing that sets no_new_privs', async () => {
    const unit = parseUnit(read('pushfleet-agent.service'));
    // Each of these implies NoNewPrivileges=yes for a non-root service (systemd.exec(5)), which
    // would make sudo (setuid) fail and with it `sudo systemctl restart <app>`.
    const impliesNoNewPrivileges = [
      'NoNewPrivileges', 'DynamicUser', 'LockPersonality', 'MemoryDenyWriteExecute', 'PrivateDevices', 'ProtectClock',
      'ProtectHostname', 'ProtectKernelLogs', 'ProtectKernelModules', 'ProtectKernelTunables', 'RestrictAddressFamilies',
      'RestrictNamespaces', 'RestrictRealtime', 'RestrictSUIDSGID', 'SystemCallArchitectures', 'SystemCallFilter', 'SystemCallLog',
    ];
    const set = impliesNoNewPrivileges.filter((k) => unit.has(`Service.${k}`) && one(unit, `Service.${k}`) !== 'no');
    expect(set).toEqual([]);
    expect(['full', 'strict']).toContain(one(unit, 'Service.ProtectSystem'));
    if (one(unit, 'Service.ProtectSystem') === 'strict') expect(unit.get('Service.ReadWritePaths')?.join(' ')).toContain('/srv');
    // The agent lets a running update finish on SIGTERM: only it may get the signal, with time to spare.
    expect(one(unit, 'Service.KillMode')).toBe('mixed');
    expect(one(unit, 'Service.TimeoutStopSec')).toMatch(/min|h/);
    // Its own state ($STATE_DIRECTORY, the agent's stateDir), also the account's home (npm and git caches).
    expect(one(unit, 'Service.StateDirectory')).toBe('pushfleet-agent');
    // sudo becomes root with these; without them every `sudo systemctl restart` fails.
    expect(one(unit, 'Service.CapabilityBoundingSet')?.split(/\s+/)).toEqual(expect.arrayContaining(['CAP_SETUID', 'CAP_SETGID']));
    // A score before this review: 8.6 ("EXPOSED"); after: 6.1.
    const result = await runProcess(systemdAnalyze(), ['security', '--offline=true', '--threshold=61', '--no-pager', join(ROOT, 'systemd', 'pushfleet-agent.service')]);
    expect(result.code, show(result)).toBe(0);
  });

  it("runs hub and agent as different accounts with separate state directories, the hub's secrets out of the agent's reach", () => {
    const hub = parseUnit(read('pushfleet-hub.service'));
    const agent = parseUnit(read('pushfleet-agent.service'));
    expect(one(hub, 'Service.User')).not.toBe(one(agent, 'Service.User'));
    expect(one(hub, 'Service.Group')).not.toBe(one(agent, 'Service.Group'));
    for (const unit of [hub, agent]) expect(['root', '0', undefined]).not.toContain(one(unit, 'Service.User'));
    const dirs = (unit: Unit) => (unit.get('Service.StateDirectory') ?? []).flatMap((v) => v.split(/\s+/));
    const hubDirs = dirs(hub);
    expect(hubDirs).toEqual(['pushfleet']);
    expect(dirs(agent).filter((d) => hubDirs.some((h) => d === h || d.startsWith(`${h}/`) || h.startsWith(`${d}/`)))).toEqual([]);
    // The hub's directory holds its webhook secret, signing key and users file: its own user's only.
    expect(one(hub, 'Service.StateDirectoryMode')).toBe('0700');
    expect(one(hub, 'Service.UMask')).toBe('0077');
    expect(one(agent, 'Service.StateDirectoryMode')).toBe('0700');
    // On a host running both, the hub's state and secrets do not exist for the agent and what it runs (sudo'd or not).
    const hidden = (agent.get('Service.InaccessiblePaths') ?? []).flatMap((v) => v.split(/\s+/)).map((p) => p.replace(/^-/, ''));
    expect(hidden).toEqual(expect.arrayContaining(['/var/lib/pushfleet', '/etc/pushfleet/pushfleet-hub.env']));
  });

  it("the agent unit's command line starts the real CLI (checked with --check)", async () => {
    const unit = parseUnit(read('pushfleet-agent.service'));
    const dir = tempDir();
    const config = join(dir, 'agent.yaml');
    writeFileSync(config, stringify({ id: 'unit-test', mqtt: { url: 'mqtt://127.0.0.1:1' }, apps: [{ name: 'web', repo: 'acme/web', branch: 'main', path: join(dir, 'web'), restart: ['/usr/lib/node_modules/pushfleet/hooks/systemd-restart', 'web.service'] }] }));
    const [file, ...args] = execStart(unit, dir).map((a) => (a === '/etc/pushfleet/agent.yaml' ? config : a));
    const result = await runProcess(file!, [...args, '--check'], { env: { ...process.env, ...environment(unit) } });
    expect(result.code, show(result)).toBe(0);
    expect(result.stdout).toContain('valid (agent unit-test, 1 app(s))');
  });

  it("the hub unit's command line runs the hub in $STATE_DIRECTORY, notifies READY=1 and stops cleanly on its KillSignal", async () => {
    const unit = parseUnit(read('pushfleet-hub.service'));
    const dir = tempDir();
    const stateDir = join(dir, 'state');
    const config = join(dir, 'hub.yaml');
    writeFileSync(config, stringify({ http: { host: '127.0.0.1', port: await freePort() }, broker: { port: await freePort() } }));
    const [file, ...args] = execStart(unit, dir).map((a) => (a === '/etc/pushfleet/hub.yaml' ? config : a));
    // What systemd would hand the service: Environment=, and $STATE_DIRECTORY from StateDirectory=.
    const notify = await startNotifySocket(cleanup);
    const watchdogUsec = String(Number(one(unit, 'Service.WatchdogSec')) * 1_000_000);
    const env = { ...process.env, ...environment(unit), STATE_DIRECTORY: stateDir, NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: watchdogUsec, PUSHFLEET_WEBHOOK_SECRET: '', PUSHFLEET_LOG_JSON: '1' };
    const { child, output, exited } = startService(cleanup, file!, args, env);
    // Type=notify: systemd takes the hub as started when READY=1 comes from its main process.
    const ready = await notify.next('READY');
    expect(ready.pid).toBe(child.pid);
    await waitFor(() => `"webhook listening" from the hub:\n${output()}`, () => output().includes('webhook listening'));
    // The hub put its generated secret in the directory systemd gave it, not in ~/.local/state.
    expect(statSync(join(stateDir, 'webhook-secret')).mode & 0o777).toBe(0o600);
    child.kill(one(unit, 'Service.KillSignal') as NodeJS.Signals);
    expect(await exited, output()).toBe(0);
  });
});

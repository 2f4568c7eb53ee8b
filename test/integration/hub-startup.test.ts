import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { HubConfig } from '../../src/hub/config.js';
import { startHub } from '../../src/hub/hub.js';
import { createLogger } from '../../src/shared/logger.js';
import { StartupError } from '../../src/shared/startup.js';
import { Cleanup } from '../support/cleanup.js';
import { CliProcess } from '../support/cli-process.js';
import { startMosquitto } from '../support/mosquitto.js';
import { freePort, portIsFree } from '../support/ports.js';
import { SECRET } from '../support/test-hub.js';

const BREAK_NATIVE_MODULE = fileURLToPath(new URL('../support/break-native-module.cjs', import.meta.url));
/** The environment in which `file` (a native module) does not load. */
const withoutNative = (file: string) => ({ NODE_OPTIONS: `--require ${BREAK_NATIVE_MODULE}`, BREAK_NATIVE_MODULE: file });
/** What keeps this process alive (ref'd servers, sockets, timers, …). */
const resources = () => process.getActiveResourcesInfo();
/** Generous: a start that fails takes well under a second on a quiet machine. */
const EXIT_WITHIN_MS = 20_000;

describe('hub start-up either completes or exits non-zero', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function ports() {
    return { http: await freePort(), mqtt: await freePort() };
  }

  /** Something else holding a port, as another program would. */
  async function holdPort(port: number): Promise<void> {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    cleanup.defer(() => new Promise((resolve) => server.close(resolve)));
  }

  function startHubProcess(stateDir: string, p: { http: number; mqtt: number }, env: NodeJS.ProcessEnv = {}): CliProcess {
    const hub = new CliProcess(['hub', '--host', '127.0.0.1', '--port', String(p.http), '--broker-port', String(p.mqtt), '--state-dir', stateDir], { PUSHFLEET_WEBHOOK_SECRET: SECRET, ...env });
    cleanup.defer(() => hub.stop('SIGKILL'));
    return hub;
  }

  /** The exit code, once the process ended by itself; fails if it is still running after the bound. */
  async function exitCode(hub: CliProcess): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'running'>((resolve) => (timer = setTimeout(() => resolve('running'), EXIT_WITHIN_MS)));
    const code = await Promise.race([hub.exited, bound]);
    clearTimeout(timer);
    expect(code, `the hub still runs ${EXIT_WITHIN_MS} ms after a failed start\n${hub.stderr}`).not.toBe('running');
    return code as number | null;
  }

  /** What the person reading the terminal or the journal gets: exactly one line. */
  function oneLine(hub: CliProcess): string {
    const lines = hub.stderr.trimEnd().split('\n');
    expect(lines, hub.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^pushfleet: /);
    return lines[0]!;
  }

  it('in a process that lives on: a failed start closes the broker it had opened and leaves nothing that keeps a process alive', async () => {
    const p = await ports();
    await holdPort(p.http);
    const stateDir = cleanup.tempDir('pushfleet-hub-');
    const config = HubConfig.parse({ http: { host: '127.0.0.1', port: p.http }, broker: { port: p.mqtt }, webhook: { secret: SECRET }, stateDir, log: { level: 'silent' } });
    const before = resources();
    const started = startHub(config, createLogger('hub', 'silent'));
    started.then((hub) => cleanup.defer(() => hub.stop()), () => undefined);
    await expect(started).rejects.toThrow(StartupError);
    expect(await portIsFree(p.mqtt), 'broker port').toBe(true);
    // Nothing left behind that keeps a process alive: no server, socket or timer (aedes has two).
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = resources();
    for (const kind of ['TCPServerWrap', 'TCPWrap', 'Timeout']) expect(after.filter((r) => r === kind).length, `${kind}s: ${after}`).toBeLessThanOrEqual(before.filter((r) => r === kind).length);
  });

  it('a corrupt hub.sqlite: exits 2 with one line naming the file and the way out, and leaves no port open', async () => {
    const stateDir = cleanup.tempDir('pushfleet-hub-');
    writeFileSync(join(stateDir, 'hub.sqlite'), 'this is not an SQLite database, it is an unlucky disk block '.repeat(100));
    const p = await ports();
    const hub = startHubProcess(stateDir, p);
    expect(await exitCode(hub)).toBe(2);
    expect(oneLine(hub)).toBe(`pushfleet: cannot open the state database ${join(stateDir, 'hub.sqlite')}: file is not a database; move it (with any -wal and -shm file beside it) away to start afresh`);
    expect(await portIsFree(p.mqtt), 'broker port').toBe(true);
    expect(await portIsFree(p.http), 'webhook port').toBe(true);
  });

  it("SQLite's native module does not load: exits 2 with one line saying how to reinstall", async () => {
    const p = await ports();
    const hub = startHubProcess(cleanup.tempDir('pushfleet-hub-'), p, withoutNative('better_sqlite3.node'));
    expect(await exitCode(hub)).toBe(2);
    expect(oneLine(hub)).toMatch(/^pushfleet: cannot load the SQLite native module \(.*better_sqlite3\.node: cannot open shared object file.*\); reinstall with "npm ci"/);
    expect(await portIsFree(p.mqtt), 'broker port').toBe(true);
  });

  it.each([
    { problem: 'an abstract NOTIFY_SOCKET', env: () => ({ NOTIFY_SOCKET: '@pushfleet-test-notify' }), says: /^pushfleet: NOTIFY_SOCKET=@pushfleet-test-notify is an abstract socket name; pushfleet can notify only a socket in the file system/ },
    {
      problem: 'NOTIFY_SOCKET set and unix-dgram not built',
      env: () => ({ NOTIFY_SOCKET: join(cleanup.tempDir('pushfleet-notify-'), 'notify'), ...withoutNative('unix_dgram.node') }),
      says: /^pushfleet: NOTIFY_SOCKET is set, but the unix-dgram native module does not load \(.*unix_dgram\.node: cannot open shared object file.*\); run "npm ci" or "npm rebuild unix-dgram"/,
    },
  ])('$problem: exits 2 with one line before opening anything, rather than never sending READY=1', async ({ env, says }) => {
    const p = await ports();
    const hub = startHubProcess(cleanup.tempDir('pushfleet-hub-'), p, env());
    expect(await exitCode(hub)).toBe(2);
    expect(oneLine(hub)).toMatch(says);
    expect(await portIsFree(p.mqtt), 'broker port').toBe(true);
  });

  it('with an external broker (mosquitto): the webhook port in use ends the MQTT connection and exits 1', async () => {
    const broker = await startMosquitto();
    cleanup.defer(() => broker.stop());
    const http = await freePort();
    await holdPort(http);
    const hub = new CliProcess(['hub', '--host', '127.0.0.1', '--port', String(http), '--mqtt-url', broker.url, '--state-dir', cleanup.tempDir('pushfleet-hub-')], { PUSHFLEET_WEBHOOK_SECRET: SECRET });
    cleanup.defer(() => hub.stop('SIGKILL'));
    expect(await exitCode(hub)).toBe(1);
    expect(oneLine(hub)).toBe(`pushfleet: cannot listen for webhooks on 127.0.0.1:${http}: address already in use; stop whatever holds it or set http.port (--port)`);
  });

  it.each([
    { held: 'webhook', port: 'http', free: 'mqtt', says: (port: number) => `cannot listen for webhooks on 127.0.0.1:${port}: address already in use; stop whatever holds it or set http.port (--port)` },
    { held: 'MQTT', port: 'mqtt', free: 'http', says: (port: number) => `cannot listen for MQTT on 127.0.0.1:${port}: address already in use; stop whatever holds it or set broker.port (--broker-port), or mqtt.url to use that broker` },
  ] as const)('the $held port in use: exits 1 with one line and leaves the other port free', async ({ port, free, says }) => {
    const p = await ports();
    await holdPort(p[port]);
    const hub = startHubProcess(cleanup.tempDir('pushfleet-hub-'), p);
    expect(await exitCode(hub)).toBe(1);
    expect(oneLine(hub)).toBe(`pushfleet: ${says(p[port])}`);
    expect(await portIsFree(p[free]), `${free} port`).toBe(true);
  });
});

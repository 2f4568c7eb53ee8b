import { afterEach, describe, expect, it } from 'vitest';
import { agentStatusTopic } from '../../src/shared/topics.js';
import { withoutCredentials } from '../support/broker-users.js';
import { startAgentProcess } from '../support/agent-process.js';
import { Cleanup } from '../support/cleanup.js';
import { CliProcess } from '../support/cli-process.js';
import { startNotifySocket, type NotifySocket } from '../support/notify-socket.js';
import { acceptsConnections, freePort } from '../support/ports.js';
import { SECRET, startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

/** 0.3 s: systemd's WatchdogSec=0.3; the service pings every 150 ms. */
const WATCHDOG_USEC = '300000';

describe('systemd notifications (Type=notify, WatchdogSec=)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const notifyEnv = (socket: NotifySocket) => ({ NOTIFY_SOCKET: socket.path, WATCHDOG_USEC });

  /** After READY=1 (the sender is running again): the watchdog pings repeat, from the service's own PID. */
  async function expectWatchdogPings(socket: NotifySocket, pid: number) {
    const ready = socket.messages.findIndex((m) => 'READY' in m.fields);
    await waitFor(
      () => `3 WATCHDOG=1 after READY=1; got ${JSON.stringify(socket.messages.map((m) => m.message))}`,
      () => socket.messages.slice(ready).filter((m) => m.fields.WATCHDOG === '1').length >= 3,
    );
    expect(socket.messages.slice(0, ready).some((m) => 'WATCHDOG' in m.fields), 'no ping before READY=1').toBe(false);
    expect(new Set(socket.messages.map((m) => m.pid))).toEqual(new Set([pid]));
  }

  /** SIGTERM: STOPPING=1 arrives and the process exits 0. */
  async function expectStopping(socket: NotifySocket, service: CliProcess) {
    const before = socket.messages.length;
    expect(await service.stop('SIGTERM')).toBe(0);
    expect((await socket.next('STOPPING', before)).fields.STOPPING).toBe('1');
  }

  it('the hub: READY=1 only once the webhook and the broker accept connections, then WATCHDOG=1, STOPPING=1 on SIGTERM', async () => {
    const socket = await startNotifySocket(cleanup, { stopOnReady: true });
    const http = await freePort();
    const mqtt = await freePort();
    const stateDir = cleanup.tempDir('pushfleet-hub-');
    const hub = new CliProcess(['hub', '--host', '127.0.0.1', '--port', String(http), '--broker-port', String(mqtt), '--state-dir', stateDir], {
      PUSHFLEET_WEBHOOK_SECRET: SECRET,
      ...notifyEnv(socket),
    });
    cleanup.defer(() => hub.stop('SIGKILL'));

    const ready = await socket.next('READY');
    // The hub is stopped (SIGSTOP) from the instant its READY=1 arrived: what accepts now
    // was listening before it was sent.
    expect(ready.stopped).toBe(true);
    expect(ready.pid).toBe(hub.pid);
    expect(await acceptsConnections(http), 'webhook port').toBe(true);
    expect(await acceptsConnections(mqtt), 'broker port').toBe(true);
    expect(ready.fields.STATUS).toBe(`taking pushes on 127.0.0.1:${http}/webhook; MQTT mqtt://127.0.0.1:${mqtt}`);
    process.kill(hub.pid, 'SIGCONT');

    await expectWatchdogPings(socket, hub.pid);
    await expectStopping(socket, hub);
  });

  it('the agent: READY=1 only once it is online, then WATCHDOG=1, STOPPING=1 on SIGTERM', async () => {
    const broker = await startTestHub(cleanup, 'aedes');
    const socket = await startNotifySocket(cleanup, { stopOnReady: true });
    // An app no push has reached yet: the agent clones nothing, it only has to come online.
    const app = { name: 'web', repo: 'acme/web', branch: 'main', path: `${cleanup.tempDir('pushfleet-app-')}/web`, remote: 'file:///nonexistent', restart: ['true'] };
    const agent = await startAgentProcess(cleanup, { id: 'notify-1', mqttUrl: broker.mqttUrl, apps: [app], env: notifyEnv(socket) });

    const ready = await socket.next('READY');
    expect(ready.stopped).toBe(true);
    expect(ready.pid).toBe(agent.pid);
    // While it is stopped at READY=1: its retained status already says online.
    const status = await watch(cleanup, broker.mqttUrl, agentStatusTopic('notify-1'));
    const online = await waitFor('the retained agent status', () => status.messages.at(-1));
    expect(JSON.parse(online.payload)).toMatchObject({ agent: 'notify-1', state: 'online' });
    expect(ready.fields.STATUS).toBe(`online as notify-1, 1 app(s); MQTT ${withoutCredentials(broker.mqttUrl)}`);
    process.kill(agent.pid, 'SIGCONT');

    await expectWatchdogPings(socket, agent.pid);
    await expectStopping(socket, agent);
  });
});

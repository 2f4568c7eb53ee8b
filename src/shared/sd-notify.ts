import { createRequire } from 'node:module';
import type { Logger } from './logger.js';
import { firstLine, StartupError } from './startup.js';

/**
 * What a service (hub, agent) tells the service manager, in systemd's sd_notify(3) protocol:
 * READY=1 once it serves, STATUS= lines, WATCHDOG=1 pings, STOPPING=1. Without $NOTIFY_SOCKET
 * (not under a Type=notify unit) every call does nothing.
 */
export type ServiceManager = {
  /** READY=1: every listener is up. Starts the watchdog pings if the unit has WatchdogSec=. */
  ready(status: string): void;
  status(text: string): void;
  stopping(status: string): void;
};

export type NotifyTarget = { socket: string; watchdogMs: number | undefined };

/**
 * Where to send, from the environment systemd sets. Only file-system sockets: Node has no
 * AF_UNIX datagrams, and unix-dgram (the transport) cannot address abstract (`@`) names, which
 * systemd does not use for services anyway (/run/systemd/notify, $XDG_RUNTIME_DIR/systemd/notify).
 * The watchdog is ours only if WATCHDOG_PID, when set, is our PID; we ping at half the timeout.
 */
export function notifyTarget(env: NodeJS.ProcessEnv, pid: number): NotifyTarget | undefined {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return undefined;
  if (!socket.startsWith('/')) {
    const kind = socket.startsWith('@') ? 'an abstract socket name' : 'not a socket path';
    throw new StartupError(`NOTIFY_SOCKET=${socket} is ${kind}; pushfleet can notify only a socket in the file system, such as systemd's /run/systemd/notify`, 2);
  }
  const usec = Number(env.WATCHDOG_USEC);
  const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === pid;
  return { socket, watchdogMs: forUs && Number.isInteger(usec) && usec > 0 ? Math.max(1, Math.floor(usec / 2000)) : undefined };
}

const NONE: ServiceManager = { ready: () => undefined, status: () => undefined, stopping: () => undefined };

/** A STATUS= value is one line of the datagram. */
const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ');

/**
 * The service manager for this process. Takes NOTIFY_SOCKET and the watchdog variables out of
 * `env` (as sd_notify's unset_environment does): commands the agent runs must not inherit them.
 */
export function serviceManager(log: Logger, env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): ServiceManager {
  const target = notifyTarget(env, pid);
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  if (!target) return NONE;
  const send = datagramSender(target.socket, log);
  let watchdog: NodeJS.Timeout | undefined;
  return {
    ready(status) {
      send(`READY=1\nSTATUS=${oneLine(status)}`);
      // From a timer on the event loop: a loop that stops turning stops the pings, and systemd
      // kills the process after WatchdogSec=. Unref'd: it must never keep a stopping process up.
      if (target.watchdogMs !== undefined) watchdog ??= setInterval(() => send('WATCHDOG=1'), target.watchdogMs).unref();
    },
    status: (text) => send(`STATUS=${oneLine(text)}`),
    stopping(status) {
      clearInterval(watchdog);
      send(`STOPPING=1\nSTATUS=${oneLine(status)}`);
    },
  };
}

type UnixDgramSocket = {
  on(event: 'error', listener: (err: Error) => void): void;
  send(buf: Buffer, offset: number, length: number, path: string, callback: (err?: Error) => void): void;
  close(): void;
};
type UnixDgram = { createSocket(type: 'unix_dgram'): UnixDgramSocket };

/**
 * One datagram per message, sent from this process (systemd's default NotifyAccess=main takes
 * messages from the main PID only, so a helper process such as systemd-notify would not do).
 * A socket per message: nothing stays open to keep the process alive or leak.
 */
function datagramSender(path: string, log: Logger): (message: string) => void {
  let dgram: UnixDgram;
  try {
    // Loaded only under systemd: a missing native build must not break every other command.
    dgram = createRequire(import.meta.url)('unix-dgram') as UnixDgram;
  } catch (err) {
    throw new StartupError(`NOTIFY_SOCKET is set, but the unix-dgram native module does not load (${firstLine(err)}); run "npm ci" or "npm rebuild unix-dgram" with this Node (${process.version})`, 2);
  }
  const failed = (err: Error) => log.warn({ socket: path, err: err.message }, 'could not notify the service manager');
  return (message) => {
    const buf = Buffer.from(message);
    try {
      const socket = dgram.createSocket('unix_dgram');
      socket.on('error', failed);
      socket.send(buf, 0, buf.length, path, (err) => {
        if (err) failed(err);
        socket.close();
      });
    } catch (err) {
      failed(err as Error);
    }
  };
}

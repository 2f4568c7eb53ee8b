import { createRequire } from 'node:module';
import { unlinkSync } from 'node:fs';

/** What one sd_notify(3) datagram says; unknown keys are ignored, as systemd does. */
export type NotifyMessage = { ready: boolean; watchdog: boolean; watchdogTrigger: boolean; stopping: boolean; status?: string };

/** Parses a datagram of newline-separated KEY=VALUE assignments. */
export function parseNotify(text: string): NotifyMessage {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const status = fields.get('STATUS');
  return {
    ready: fields.get('READY') === '1',
    watchdog: fields.get('WATCHDOG') === '1',
    watchdogTrigger: fields.get('WATCHDOG') === 'trigger',
    stopping: fields.get('STOPPING') === '1',
    // Bounded: it goes into the service's reported state.
    ...(status !== undefined && { status: status.slice(0, 512) }),
  };
}

/** Longest path a sockaddr_un holds (108 bytes with the terminating NUL). */
export const MAX_SOCKET_PATH = 107;

type DgramSocket = {
  on(event: 'error', listener: (err: Error) => void): void;
  on(event: 'listening', listener: () => void): void;
  bind(path: string): void;
  close(): void;
};
type UnixDgram = { createSocket(type: 'unix_dgram', listener: (buf: Buffer) => void): DgramSocket };

export type NotifyListener = { readonly path: string; close(): void };

/**
 * A service's $NOTIFY_SOCKET: an AF_UNIX datagram socket bound at `path` (Node has none; the
 * unix-dgram native module provides it, as for the sending side in src/shared/sd-notify.ts).
 * Resolves once bound. A stale file of a previous agent at `path` is removed first.
 */
export async function listenNotify(path: string, onMessage: (message: NotifyMessage) => void, onError: (err: Error) => void): Promise<NotifyListener> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) throw new Error(`notify socket path ${path} is longer than ${MAX_SOCKET_PATH} bytes; use a shorter stateDir`);
  const dgram = createRequire(import.meta.url)('unix-dgram') as UnixDgram;
  try {
    unlinkSync(path);
  } catch {
    // none left over
  }
  const socket = dgram.createSocket('unix_dgram', (buf) => onMessage(parseNotify(buf.toString('utf8'))));
  await new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('listening', resolve);
    socket.bind(path);
  });
  socket.on('error', onError);
  return {
    path,
    close() {
      socket.close();
      try {
        unlinkSync(path);
      } catch {
        // gone already
      }
    },
  };
}

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cleanup } from './cleanup.js';
import { waitFor } from './wait.js';

const LISTENER = fileURLToPath(new URL('./notify-listener.py', import.meta.url));

/** One datagram as systemd would see it: the sender's PID and its KEY=VALUE lines. */
export type NotifyMessage = { pid: number | null; message: string; stopped: boolean; fields: Record<string, string> };

export type NotifySocket = {
  path: string;
  messages: NotifyMessage[];
  /** Waits for a message with `key` (e.g. READY) and returns it. */
  next(key: string, after?: number, timeoutMs?: number): Promise<NotifyMessage>;
};

/**
 * A stand-in for systemd's $NOTIFY_SOCKET: a python3 AF_UNIX datagram listener (Node has no
 * datagram Unix sockets). With `stopOnReady` it SIGSTOPs the sender the instant READY=1 arrives
 * (the test sends SIGCONT), so what listens then is what listened before READY=1 was sent.
 */
export async function startNotifySocket(cleanup: Cleanup, opts: { stopOnReady?: boolean } = {}): Promise<NotifySocket> {
  const path = join(cleanup.tempDir('pushfleet-notify-'), 'notify');
  const child = spawn('python3', [LISTENER, path, ...(opts.stopOnReady ? ['--stop-on-ready'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  cleanup.defer(() => {
    child.kill('SIGKILL');
    return exited;
  });
  const messages: NotifyMessage[] = [];
  let listening = false;
  let output = '';
  let partial = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const parsed = JSON.parse(line) as { listening?: string; pid: number | null; message: string; stopped: boolean };
      if (parsed.listening) listening = true;
      else messages.push({ ...parsed, fields: Object.fromEntries(parsed.message.split('\n').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) });
    }
  });
  await waitFor(() => `the notify listener on ${path}\n${output}`, () => listening);
  return {
    path,
    messages,
    next: (key, after = 0, timeoutMs) =>
      waitFor(() => `${key}= on the notify socket; got ${JSON.stringify(messages.map((m) => m.message))}`, () => messages.slice(after).find((m) => key in m.fields), timeoutMs),
  };
}

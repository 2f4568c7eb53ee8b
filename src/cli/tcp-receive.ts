import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';

export type Receiving = { done: Promise<{ bytes: number }>; close(): void };

/**
 * The seed's `RECEIVE <port> <file>` (it ran `ncat -l <port> > <file> &`): listens on every
 * interface, saves the first connection's bytes to the file, then stops listening. Resolves once
 * listening, so a SEND that follows can connect; `done` rejects if nothing complete arrived in
 * time or `close` was called first. The bytes go to a hidden file beside it, renamed over `file`
 * only once complete: a cut transfer leaves an earlier run's file as it was.
 */
export async function receiveOnce(port: number, file: string, timeoutMs: number): Promise<Receiving> {
  const partial = join(dirname(file), `.${basename(file)}.${process.pid}.partial`);
  const server = createServer();
  server.listen(port, '0.0.0.0');
  await once(server, 'listening');
  let socket: Socket | undefined;
  let settle!: (outcome: { bytes: number } | Error) => void;
  const done = new Promise<{ bytes: number }>((resolve, reject) => {
    settle = (outcome) => {
      clearTimeout(timer);
      server.close();
      if (outcome instanceof Error) {
        socket?.destroy();
        void rm(partial, { force: true }).finally(() => reject(outcome));
      } else resolve(outcome);
    };
  });
  done.catch(() => undefined); // the caller looks at it later; never an unhandled rejection
  const timer = setTimeout(() => settle(new Error(`nothing complete arrived on port ${port} within ${timeoutMs / 1000} s`)), timeoutMs);
  server.once('connection', (s) => {
    socket = s;
    server.close();
    pipeline(s, createWriteStream(partial, { flags: 'wx' }))
      .then(() => rename(partial, file))
      .then(
        () => settle({ bytes: s.bytesRead }),
        (err: Error) => settle(new Error(`receiving on port ${port} into ${file}: ${err.message}`)),
      );
  });
  return { done, close: () => settle(new Error(`stopped listening on port ${port}`)) };
}

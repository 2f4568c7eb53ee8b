import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';

export type Receiving = { done: Promise<{ bytes: number }>; close(): void };

/**
 * The seed's `RECEIVE <port> <file>` (it ran `ncat -l <port> > <file> &`): listens on every
 * interface, saves the first connection's bytes to the file, then stops listening. Resolves once
 * listening, so a SEND that follows can connect; `done` rejects if nothing complete arrived in
 * time or `close` was called first.
 */
export async function receiveOnce(port: number, file: string, timeoutMs: number): Promise<Receiving> {
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
        reject(outcome);
      } else resolve(outcome);
    };
  });
  done.catch(() => undefined); // the caller looks at it later; never an unhandled rejection
  const timer = setTimeout(() => settle(new Error(`nothing complete arrived on port ${port} within ${timeoutMs / 1000} s`)), timeoutMs);
  server.once('connection', (s) => {
    socket = s;
    server.close();
    pipeline(s, createWriteStream(file)).then(
      () => settle({ bytes: s.bytesRead }),
      (err: Error) => settle(new Error(`receiving on port ${port}: ${err.message}`)),
    );
  });
  return { done, close: () => settle(new Error(`stopped listening on port ${port}`)) };
}

import type { IncomingMessage, ServerResponse } from 'node:http';

/** Answers with a short JSON body: every webhook answer, success or error, goes through here. */
export function reply(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Answers a client that is still sending (or stalled) and closes its connection once answered. */
export function replyAndClose(req: IncomingMessage, res: ServerResponse, status: number, body: Record<string, unknown>): void {
  res.once('finish', () => req.socket.destroy());
  reply(res, status, body, { connection: 'close' });
}

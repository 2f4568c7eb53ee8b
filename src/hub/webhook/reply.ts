import type { IncomingMessage, ServerResponse } from 'node:http';

/** Answers with a short JSON body: every webhook answer, success or error, goes through here. */
export function reply(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Answers a request whose body was not (fully) read. The rest of the body is read and dropped
 * first: answering and closing while the client still sends makes the kernel reset the
 * connection, and the client would see a reset instead of the answer.
 */
export function replyAfterBody(req: IncomingMessage, res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
  if (req.readableEnded || req.destroyed) return reply(res, status, body, headers);
  req.once('end', () => reply(res, status, body, headers));
  req.resume();
}

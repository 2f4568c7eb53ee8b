import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { z } from 'zod';
import { Page } from '../../shared/contract/services-engine-messages.js';
import type { Logger } from '../../shared/logger.js';
import { ApiError, sendError } from './api-error.js';

/** Every JSON body the API takes is a small document; a body past this is refused (413) before it is parsed. */
export const MAX_BODY_BYTES = 64 * 1024;

const TOO_LARGE = new ApiError(413, 'too-large', `body: larger than ${MAX_BODY_BYTES} bytes`);
const parseJson = express.json({ limit: MAX_BODY_BYTES, strict: true });

/**
 * The body as JSON: no body is a 400 saying what to send (`what`, e.g. "the service as JSON
 * {name, action}"), another content type a 415; parsed only within MAX_BODY_BYTES.
 */
export function jsonBody(what: string): RequestHandler {
  return (req, res, next) => {
    const type = req.is('application/json');
    if (type === null || req.headers['content-length'] === '0') return next(new ApiError(400, 'invalid', `body: send ${what}`));
    if (type === false) return next(new ApiError(415, 'unsupported-media-type', `body: content-type ${req.headers['content-type']?.slice(0, 100) ?? '(none)'} is not taken; send application/json`));
    // Refused by its announced length before a byte is read (body-parser would read it all first).
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return next(TOO_LARGE);
    parseJson(req, res, next);
  };
}

/**
 * `value` as `schema` takes it, or a 400 naming each bad field: a body's by its key (`selector.zone: …`),
 * anything else by `what` (`query limit: …`, `name: …`).
 */
export function checked<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const at = (path: readonly PropertyKey[]) => (what === 'body' && path.length ? path.map(String).join('.') : [what, ...path.map(String)].join(' '));
  const lines = parsed.error.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys.map((k) => `${at([...i.path, k])}: unknown key`) : [`${at(i.path)}: ${i.message}`]));
  throw new ApiError(400, 'invalid', lines.join('; '));
}

/** A list's window: `offset` (default 0) and `limit` (default 50, at most 1000). Lists answer `{items, total, offset, limit}`. */
export const pageOf = (query: Record<string, string | undefined>): Page => checked(Page, { offset: query.offset, limit: query.limit }, 'query');

/** The query's parameters, each given at most once and all of them known. */
export function queryOf(req: Request, known: readonly string[]): Record<string, string | undefined> {
  const query = req.query as Record<string, unknown>;
  const out: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(query)) {
    if (!known.includes(key)) throw new ApiError(400, 'invalid', `query ${key.slice(0, 64)}: unknown parameter${known.length ? ` (known: ${known.join(', ')})` : ''}`);
    if (typeof value !== 'string') throw new ApiError(400, 'invalid', `query ${key}: give it once, as a plain value`);
    out[key] = value;
  }
  return out;
}

/** body-parser's refusals by type: a body that is too large, not JSON, or in a charset it cannot read. */
const BODY_ERRORS: Record<string, [number, string, string]> = {
  'entity.parse.failed': [400, 'invalid', 'body: malformed JSON'],
  'charset.unsupported': [415, 'unsupported-media-type', 'body: send JSON in UTF-8'],
  'encoding.unsupported': [415, 'unsupported-media-type', 'body: content-encoding is not taken; send it uncompressed'],
};

/** The API's answer to an error a route threw: its ApiError, a body refusal, or a logged 500. */
export function answerError(err: unknown, req: Request, res: Response, log: Logger): void {
  const refusal = err instanceof ApiError ? err : (err as { type?: string }).type === 'entity.too.large' ? TOO_LARGE : undefined;
  if (refusal) {
    // The rest of a body too large is not read: the connection closes once answered.
    if (refusal.status === 413) {
      res.set('connection', 'close');
      res.once('finish', () => req.socket.destroy());
    }
    return sendError(res, refusal.status, refusal.code, refusal.message);
  }
  const bodyError = BODY_ERRORS[(err as { type?: string }).type ?? ''];
  if (bodyError) return sendError(res, ...bodyError);
  log.error({ err, method: req.method, path: req.path }, 'API request failed');
  sendError(res, 500, 'internal', 'internal error; see the hub log');
}

/** An express error handler answering with answerError (express knows it by its four parameters). */
export const errorAnswer =
  (log: Logger) =>
  (err: unknown, req: Request, res: Response, _next: NextFunction): void =>
    answerError(err, req, res, log);

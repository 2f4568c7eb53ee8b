import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { Page, ServiceCreate, ServiceStatusName } from '../../shared/contract/services-engine-messages.js';
import { ServiceName } from '../../shared/contract/services-messages.js';
import type { Logger } from '../../shared/logger.js';
import { ServicesError, type ServicesApi } from '../engines/services/services-api.js';
import type { Users } from '../users/users-file.js';
import { ApiError, sendError, SERVICES_STATUS } from './api-error.js';
import { OperatorAuth } from './operator-auth.js';

export type ServicesRoutesDeps = {
  /** The services engine's API, or undefined when engines.services is off (then every route answers 503). */
  services(): ServicesApi | undefined;
  users(): Users;
  log: Logger;
};

/** How the services engine offers its API to the REST door: the engine named `services` has `api`. */
/** A ServiceCreate is a few hundred bytes; a body past this is refused (413) before it is parsed. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * `/api/v1/services…` and `/api/v1/servers` (mounted at /api/v1): operators only (operator-auth.ts),
 * every input checked by the contract's schemas, every answer JSON, every refusal `{error, code}`
 * with the status its cause calls for.
 */
export function servicesRoutes(deps: ServicesRoutesDeps): Router {
  const router = Router();
  const auth = new OperatorAuth({ users: deps.users, log: deps.log });
  const api = (): ServicesApi => {
    const services = deps.services();
    if (!services) throw new ApiError(503, 'unavailable', 'services engine is not enabled (engines.services.enabled in the hub config)');
    return services;
  };
  const by = (req: Request, res: Response): string => `${res.locals.operator as string}@${req.socket.remoteAddress ?? 'unknown'}`;
  // After the login, so a client without an account cannot make the hub read a body.
  router.use(auth.handler);

  router.post('/services', jsonBody, async (req, res) => {
    const service = checked(ServiceCreate, req.body, 'body');
    res.status(201).json(await api().add(service, by(req, res)));
  });
  router.get('/services', async (req, res) => {
    const query = queryOf(req, ['offset', 'limit', 'status']);
    const status = checked(ServiceStatusName.optional(), query.status, 'query status');
    res.json(await api().list(pageOf(query), status));
  });
  router.get('/services/:name', async (req, res) => {
    queryOf(req, []);
    res.json(await api().show(nameOf(req)));
  });
  router.delete('/services/:name', async (req, res) => {
    queryOf(req, []);
    res.status(202).json(await api().remove(nameOf(req), by(req, res)));
  });
  router.get('/services/:name/logs', async (req, res) => {
    const { generation } = queryOf(req, ['generation']);
    const g = checked(Generation.optional(), generation, 'query generation');
    res.json(await api().logs(nameOf(req), g));
  });
  router.get('/servers', async (req, res) => {
    res.json(await api().servers(pageOf(queryOf(req, ['offset', 'limit']))));
  });
  router.use((req, _res) => {
    throw new ApiError(404, 'not-found', `no route for ${req.method} ${req.baseUrl}${req.path}`);
  });
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => answerError(err, req, res, deps.log));
  return router;
}

const Generation = z.string().regex(/^[0-9]{1,9}$/, 'expected a generation number').transform(Number).pipe(z.number().positive('expected a generation number'));

const TOO_LARGE = new ApiError(413, 'too-large', `body: larger than ${MAX_BODY_BYTES} bytes`);
const parseJson = express.json({ limit: MAX_BODY_BYTES, strict: true });

/** The body as JSON: no body is a 400, another content type a 415; parsed only within MAX_BODY_BYTES. */
function jsonBody(req: Request, res: Response, next: NextFunction): void {
  const type = req.is('application/json');
  if (type === null || req.headers['content-length'] === '0') return next(new ApiError(400, 'invalid', 'body: send the service as JSON {name, action, arg?, selector?}'));
  if (type === false) return next(new ApiError(415, 'unsupported-media-type', `body: content-type ${req.headers['content-type']?.slice(0, 100) ?? '(none)'} is not taken; send application/json`));
  // Refused by its announced length before a byte is read (body-parser would read it all first).
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return next(TOO_LARGE);
  parseJson(req, res, next);
}

/**
 * `value` as `schema` takes it, or a 400 naming each bad field: a body's by its key (`selector.zone: …`),
 * anything else by `what` (`query limit: …`, `name: …`).
 */
function checked<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const at = (path: readonly PropertyKey[]) => (what === 'body' && path.length ? path.map(String).join('.') : [what, ...path.map(String)].join(' '));
  const lines = parsed.error.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys.map((k) => `${at([...i.path, k])}: unknown key`) : [`${at(i.path)}: ${i.message}`]));
  throw new ApiError(400, 'invalid', lines.join('; '));
}

const nameOf = (req: Request): string => checked(ServiceName, req.params.name, 'name');

const pageOf = (query: Record<string, string | undefined>): Page => checked(Page, { offset: query.offset, limit: query.limit }, 'query');

/** The query's parameters, each given at most once and all of them known. */
function queryOf(req: Request, known: string[]): Record<string, string | undefined> {
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

function answerError(err: unknown, req: Request, res: Response, log: Logger): void {
  if (err instanceof ServicesError) return sendError(res, SERVICES_STATUS[err.code], err.code, err.message);
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
  log.error({ err, method: req.method, path: req.path }, 'services API request failed');
  sendError(res, 500, 'internal', 'internal error; see the hub log');
}

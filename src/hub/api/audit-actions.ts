import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from '../../shared/logger.js';
import type { AuditInput } from '../audit/audit-entry.js';
import type { Caller } from './api-auth.js';

type Recorder = { record(input: AuditInput): Promise<void> };

/** How an API action is named in the audit log: `rollout.pause` on `web.prod.0123…`; another one by its method and path. */
export function apiAction(method: string, path: string, body: unknown): { action: string; target: string | null } {
  const p = path.split('/').map(decoded);
  const at = (pattern: RegExp) => pattern.test(path);
  if (method === 'POST' && at(/^\/rollouts\/[^/]+\/(pause|resume|abort)$/)) return { action: `rollout.${p[3]}`, target: p[2]! };
  if (method === 'POST' && at(/^\/environments\/[^/]+\/(freeze|unfreeze)$/)) return { action: `environment.${p[3]}`, target: p[2]! };
  if (method === 'POST' && at(/^\/agents\/[^/]+\/apps\/[^/]+\/retry$/)) return { action: 'app.retry', target: `${p[2]}/${p[4]}` };
  if (method === 'POST' && path === '/services') {
    const name = (body as { name?: unknown } | undefined)?.name;
    return { action: 'service.add', target: typeof name === 'string' ? name : null };
  }
  if (method === 'DELETE' && at(/^\/services\/[^/]+$/)) return { action: 'service.remove', target: p[2]! };
  return { action: `${method} /api/v1${path}`, target: null };
}

/** A path level as the routes read it; one that is not valid percent-encoding stays as sent. */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** The `error` of a JSON error answer, from the bytes handed to res.end. */
function errorOf(chunk: unknown): string | null {
  if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk)) return null;
  try {
    const error = (JSON.parse(chunk.toString()) as { error?: unknown }).error;
    return typeof error === 'string' ? error : null;
  } catch {
    return null;
  }
}

/**
 * Records every API request that may change something (any method but GET and HEAD) made with a
 * valid token, with the caller's name and what it was answered, and holds the answer until the
 * entry is committed: a client that got an answer finds the entry after any crash. Requests
 * without a valid token are recorded by ApiAuth's onRefused as refused logins.
 */
export function auditActions(audit: Recorder, log: Logger): RequestHandler {
  return (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    // Relative to /api/v1 here; routers further on may rewrite req.url while they route.
    const path = req.path;
    const end = res.end.bind(res) as (...args: unknown[]) => Response;
    res.end = ((...args: unknown[]) => {
      res.end = end as Response['end'];
      const entry = actionEntry(req, path, res, args[0]);
      if (!entry) return end(...args);
      audit
        .record(entry)
        .catch((err: unknown) => log.warn({ err: (err as Error).message, action: entry.action }, 'API action not written to the audit log; answering anyway'))
        .finally(() => end(...args));
      return res;
    }) as Response['end'];
    next();
  };
}

function actionEntry(req: Request, path: string, res: Response, chunk: unknown): AuditInput | null {
  const caller = res.locals.caller as Caller | undefined;
  if (!caller) return null;
  const status = res.statusCode;
  const { action, target } = apiAction(req.method, path, req.body);
  const error = status >= 400 ? errorOf(chunk) : null;
  return {
    kind: 'action',
    via: 'api',
    who: caller.name,
    identity: 'token',
    address: req.socket.remoteAddress ?? null,
    action,
    target,
    outcome: status < 400 ? 'accepted' : status < 500 ? 'rejected' : 'failed',
    reason: error === null ? String(status) : `${status}: ${error}`,
  };
}

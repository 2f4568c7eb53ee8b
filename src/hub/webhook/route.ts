import express, { type Request, type Response, type NextFunction, type RequestHandler } from 'express';
import { Webhooks } from '@octokit/webhooks';
import { z } from 'zod';
import { check, type PushMessage } from '../../shared/messages.js';
import { pushTopic } from '../../shared/topics.js';
import type { Logger } from '../../shared/logger.js';
import { GitHubPushPayload, toPushMessage } from './github-push.js';
import type { DeliveryLog } from './deliveries.js';

export type WebhookDeps = {
  secret: string;
  maxBodyBytes: number;
  maxInFlight: number;
  deliveries: DeliveryLog;
  publish(push: PushMessage): Promise<void>;
  isConnected(): boolean;
  log: Logger;
  now?: () => Date;
};

const SIGNATURE = z.string().regex(/^sha256=[0-9a-f]{64}$/);
const Meta = z.object({
  'x-github-event': z.string().regex(/^[a-z_]{1,64}$/, 'expected a GitHub event name'),
  'x-github-delivery': z.string().regex(/^[A-Za-z0-9-]{1,100}$/, 'expected a delivery GUID'),
});

function reply(res: Response, status: number, body: Record<string, unknown>): void {
  res.status(status).json(body);
}

/** GitHub may send the JSON as the body or, for form content type, in the `payload` field. */
function payloadText(req: Request): string {
  const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
  return req.is('application/x-www-form-urlencoded') ? (new URLSearchParams(raw).get('payload') ?? '') : raw;
}

/**
 * POST /webhook: verify the raw body → check headers → parse → publish, answering each failure
 * with its own status and a short JSON error. Nothing rejected reaches MQTT.
 */
export function webhookHandlers(deps: WebhookDeps): RequestHandler[] {
  const webhooks = new Webhooks({ secret: deps.secret });
  const now = deps.now ?? (() => new Date());

  const handle = async (req: Request, res: Response): Promise<void> => {
    const signature = SIGNATURE.safeParse(req.get('x-hub-signature-256'));
    if (!signature.success) {
      return reply(res, 401, { error: 'missing or malformed X-Hub-Signature-256 header (expected sha256=<64 hex>)' });
    }
    const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    if (!(await webhooks.verify(raw, signature.data))) {
      return reply(res, 401, { error: 'signature does not match: check the webhook secret in GitHub and the hub' });
    }
    const meta = check(Meta, { 'x-github-event': req.get('x-github-event'), 'x-github-delivery': req.get('x-github-delivery') });
    if (!meta.ok) return reply(res, 400, { error: `bad headers: ${meta.error}` });
    const event = meta.value['x-github-event'];
    const delivery = meta.value['x-github-delivery'];

    let json: unknown;
    try {
      json = JSON.parse(payloadText(req));
    } catch (err) {
      return reply(res, 400, { error: `body is not valid JSON: ${(err as Error).message}` });
    }
    if (event === 'ping') return reply(res, 200, { ok: true, event, delivery, message: 'pong' });
    if (event !== 'push') return reply(res, 202, { ok: true, event, delivery, ignored: true });

    const payload = check(GitHubPushPayload, json);
    if (!payload.ok) return reply(res, 400, { error: `not a valid push payload: ${payload.error}` });
    const push = toPushMessage(payload.value, delivery, now());
    const topic = pushTopic(push.repo);

    if (!deps.isConnected()) {
      return reply(res, 503, { error: 'MQTT broker is not connected; redeliver later' });
    }
    if (deps.deliveries.pending >= deps.maxInFlight) {
      res.set('Retry-After', '1');
      return reply(res, 503, { error: 'too many pushes in flight; redeliver later' });
    }
    try {
      const outcome = await deps.deliveries.once(delivery, topic, () => deps.publish(push));
      if (!outcome.duplicate) {
        deps.log.info({ delivery, repo: push.repo, ref: push.ref, sha: push.after, pusher: push.pusher.name }, 'push published');
      }
      return reply(res, 200, { ok: true, delivery, topic: outcome.topic, duplicate: outcome.duplicate });
    } catch (err) {
      deps.log.warn({ delivery, err: (err as Error).message }, 'push not published');
      return reply(res, 503, { error: `push not published: ${(err as Error).message}; redeliver later` });
    }
  };

  return [
    express.raw({ type: () => true, limit: deps.maxBodyBytes }),
    (req, res, next) => handle(req, res).catch(next),
  ];
}

/** Maps body-parser's errors (size, encoding) to the same short JSON answers. */
export function bodyErrorHandler(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  const e = err as { type?: string; status?: number; message?: string; limit?: number };
  if (e.type === 'entity.too.large') {
    return reply(res, 413, { error: `body larger than the ${e.limit} byte limit` });
  }
  if (e.status && e.status >= 400 && e.status < 500) return reply(res, e.status, { error: e.message ?? 'bad request' });
  next(err);
}

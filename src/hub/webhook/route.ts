import type { IncomingMessage, ServerResponse } from 'node:http';
import { Webhooks } from '@octokit/webhooks';
import { z } from 'zod';
import { check, type PushMessage } from '../../shared/messages.js';
import { pushTopic } from '../../shared/topics.js';
import type { Logger } from '../../shared/logger.js';
import { GitHubPushPayload, toPushMessage } from './github-push.js';
import type { DeliveryLog } from './deliveries.js';
import { BodyError, readBody } from './read-body.js';
import { reply, replyAfterBody } from './reply.js';

export type WebhookDeps = {
  secret: string;
  maxBodyBytes: number;
  /** Webhook requests handled at once (reading, verifying, publishing); beyond it 503. */
  maxInFlight: number;
  deliveries: DeliveryLog;
  publish(push: PushMessage): Promise<void>;
  isConnected(): boolean;
  /** Why no push can be taken now, whatever the broker does (the state directory is gone), or undefined. */
  unavailable(): string | undefined;
  log: Logger;
  now?: () => Date;
};

const SIGNATURE = /^sha256=[0-9a-f]{64}$/;
const Meta = z.object({
  'x-github-event': z.string().regex(/^[a-z_]{1,64}$/, 'expected a GitHub event name'),
  'x-github-delivery': z.string().regex(/^[A-Za-z0-9-]{1,100}$/, 'expected a delivery GUID'),
});

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** GitHub may send the JSON as the body or, for form content type, in the `payload` field. */
function payloadText(req: IncomingMessage, raw: string): string {
  const type = (header(req, 'content-type') ?? '').split(';', 1)[0]!.trim().toLowerCase();
  return type === 'application/x-www-form-urlencoded' ? (new URLSearchParams(raw).get('payload') ?? '') : raw;
}

/**
 * POST /webhook on plain node:http (express routing and body-parser cost more than the rest of
 * the request): read the body within the limit → verify the raw body → check headers → parse →
 * publish, answering each failure with its own status and a short JSON error. Nothing rejected
 * reaches MQTT. At most `maxInFlight` requests are handled at once, so bodies and unacknowledged
 * publishes cannot grow memory without bound; beyond it GitHub gets 503 and redelivers.
 */
export function webhookHandler(deps: WebhookDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const webhooks = new Webhooks({ secret: deps.secret });
  const now = deps.now ?? (() => new Date());
  let inFlight = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const unavailable = deps.unavailable();
    if (unavailable !== undefined) return replyAfterBody(req, res, 503, { error: unavailable });
    let body: Buffer;
    try {
      body = await readBody(req, deps.maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyError) return replyAfterBody(req, res, err.status, { error: err.message });
      throw err;
    }
    const signature = header(req, 'x-hub-signature-256');
    if (signature === undefined || !SIGNATURE.test(signature)) {
      return reply(res, 401, { error: 'missing or malformed X-Hub-Signature-256 header (expected sha256=<64 hex>)' });
    }
    const raw = body.toString('utf8');
    if (!(await webhooks.verify(raw, signature))) {
      return reply(res, 401, { error: 'signature does not match: check the webhook secret in GitHub and the hub' });
    }
    const meta = check(Meta, { 'x-github-event': header(req, 'x-github-event'), 'x-github-delivery': header(req, 'x-github-delivery') });
    if (!meta.ok) return reply(res, 400, { error: `bad headers: ${meta.error}` });
    const event = meta.value['x-github-event'];
    const delivery = meta.value['x-github-delivery'];

    let json: unknown;
    try {
      json = JSON.parse(payloadText(req, raw));
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

  return (req, res) => {
    if (inFlight >= deps.maxInFlight) {
      return replyAfterBody(req, res, 503, { error: `too many webhook requests in flight (limit ${deps.maxInFlight}); redeliver later` }, { 'retry-after': '1' });
    }
    inFlight++;
    // 'close' comes once per response, answered or aborted, so the count cannot leak.
    res.once('close', () => inFlight--);
    handle(req, res).catch((err: unknown) => {
      deps.log.error({ err, path: req.url }, 'unhandled error in webhook request');
      if (!res.headersSent) reply(res, 500, { error: 'internal error; see the hub log' });
    });
  };
}

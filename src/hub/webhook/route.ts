import type { IncomingMessage, ServerResponse } from 'node:http';
import { Webhooks } from '@octokit/webhooks';
import { z } from 'zod';
import { check, type PushMessage } from '../../shared/messages.js';
import { pushTopic } from '../../shared/topics.js';
import type { Logger } from '../../shared/logger.js';
import { GitHubPushPayload, toPushMessage } from './github-push.js';
import type { AuditInput } from '../audit/audit-entry.js';
import type { AuditLog } from '../audit/audit-log.js';
import { deliveryEntry, refusedDelivery } from '../audit/delivery-entries.js';
import type { DeliveryLog, DeliveryOutcome } from './deliveries.js';
import { BodyError, ByteBudget, readBody } from './read-body.js';
import { reply, replyAndClose } from './reply.js';

export type WebhookDeps = {
  secret: string;
  maxBodyBytes: number;
  /** Pushes being recorded or awaiting their PUBACK at once; beyond it 503. */
  maxInFlight: number;
  /** Bytes of bodies held at once across all requests; beyond it 503. */
  maxBufferedBytes: number;
  /** A body must have arrived this long after its headers, or 408 and the connection is closed. */
  bodyTimeoutMs: number;
  /** How long the answer waits for the PUBACK before saying 202 `publishing`. */
  publishTimeoutMs: number;
  deliveries: DeliveryLog;
  /** Hands a push to the broker; resolves on its PUBACK, however late. */
  publish(push: PushMessage): Promise<void>;
  isConnected(): boolean;
  /** Where every delivery is recorded: refusals as they are answered, the others before. */
  audit?: Pick<AuditLog, 'record' | 'note'>;
  /** Why no push can be taken now, whatever the broker does (the state directory is gone), or undefined. */
  unavailable(): string | undefined;
  log: Logger;
  now?: () => Date;
  /** Told what became of each request and how long each push took to be acknowledged (/metrics). */
  observer?: WebhookObserver;
};

/**
 * What became of a webhook request: a push's DeliveryOutcome (`duplicate` for a copy of one
 * already handed over), `ignored` (ping, other events), `rejected` (4xx: signature, headers,
 * body), `not-published` (503) or `error` (500).
 */
export const DELIVERY_RESULTS = ['published', 'publishing', 'in-doubt', 'duplicate', 'not-published', 'ignored', 'rejected', 'error'] as const;
export type DeliveryResult = (typeof DELIVERY_RESULTS)[number];

export type WebhookObserver = {
  delivered(result: DeliveryResult): void;
  /** Seconds from the request's arrival to the broker's PUBACK of its push (event and head), however late. */
  published(seconds: number): void;
};

const SIGNATURE = /^sha256=[0-9a-f]{64}$/;
const Meta = z.object({
  // GitHub's event names are lowercase words joined by underscores, digits included (projects_v2_item).
  'x-github-event': z.string().regex(/^[a-z0-9_]{1,64}$/, 'expected a GitHub event name'),
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

/** The answer for what became of a delivery: 200 and 202 say published or held, 503 nothing. */
function answer(res: ServerResponse, delivery: string, outcome: DeliveryOutcome): void {
  if (outcome.state === 'not-published') {
    return reply(res, 503, { error: `${outcome.reason}: nothing was published; redeliver later` }, outcome.busy ? { 'retry-after': '1' } : {});
  }
  const { state, duplicate, topic } = outcome;
  if (state === 'published') return reply(res, 200, { ok: true, delivery, topic, duplicate, state });
  const message =
    state === 'publishing'
      ? 'handed to the MQTT client, not acknowledged by the broker yet: it goes out when the broker reads its connection again (if that connection breaks first, it stays in doubt) and is never published twice'
      : 'handed to the broker but never acknowledged (the hub restarted, or its broker connection broke); it may have been published and is not published again';
  return reply(res, 202, { ok: true, delivery, topic, duplicate, state, message });
}

/**
 * POST /webhook on plain node:http (express routing and body-parser cost more than the rest of
 * the request): read the body within its deadline and the limits → verify the raw body → check
 * headers → parse → publish at most once, answering each failure with its own status and a short
 * JSON error. Nothing rejected reaches MQTT. A slow or stalled client costs only the bytes it sent
 * and is cut at the body deadline; pushes awaiting the broker are bounded by `maxInFlight`.
 */
export function webhookHandler(deps: WebhookDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const webhooks = new Webhooks({ secret: deps.secret });
  const now = deps.now ?? (() => new Date());
  const budget = new ByteBudget(deps.maxBufferedBytes);

  /** The result of a push is its outcome; the other answers are told by their status. */
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<DeliveryResult | void> => {
    const received = performance.now();
    const address = req.socket.remoteAddress ?? null;
    /** A refusal, recorded without waiting: its answer does not depend on the entry, and a flood must not wait on the disk. */
    const refuse = (status: number, error: string, opts: { close?: boolean; retryAfter?: boolean; delivery?: string } = {}): void => {
      deps.audit?.note(refusedDelivery(address, status, error, opts.delivery));
      if (opts.close) return replyAndClose(req, res, status, { error });
      reply(res, status, { error }, opts.retryAfter ? { 'retry-after': '1' } : {});
    };
    const unavailable = deps.unavailable();
    if (unavailable !== undefined) return refuse(503, unavailable, { close: true });
    let body: Buffer;
    try {
      body = await readBody(req, { maxBytes: deps.maxBodyBytes, deadlineMs: deps.bodyTimeoutMs, budget });
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      return refuse(err.status, err.message, { close: err.closeConnection, retryAfter: err.retryAfter });
    }
    // Held until answered: the body and what is built from it live that long.
    if (res.closed) budget.release(body.length);
    else res.once('close', () => budget.release(body.length));
    const signature = header(req, 'x-hub-signature-256');
    if (signature === undefined || !SIGNATURE.test(signature)) {
      return refuse(401, 'missing or malformed X-Hub-Signature-256 header (expected sha256=<64 hex>)');
    }
    if (body.length === 0) return refuse(400, 'empty body: expected the JSON payload of a GitHub event');
    const raw = body.toString('utf8');
    if (!(await webhooks.verify(raw, signature))) {
      return refuse(401, 'signature does not match: check the webhook secret in GitHub and the hub');
    }
    const meta = check(Meta, { 'x-github-event': header(req, 'x-github-event'), 'x-github-delivery': header(req, 'x-github-delivery') });
    if (!meta.ok) return refuse(400, `bad headers: ${meta.error}`);
    const event = meta.value['x-github-event'];
    const delivery = meta.value['x-github-delivery'];

    let json: unknown;
    try {
      json = JSON.parse(payloadText(req, raw));
    } catch (err) {
      return refuse(400, `body is not valid JSON: ${(err as Error).message}`, { delivery });
    }
    if (event !== 'push') {
      await recorded(deliveryEntry({ address, delivery, event }));
      return event === 'ping' ? reply(res, 200, { ok: true, event, delivery, message: 'pong' }) : reply(res, 200, { ok: true, event, delivery, ignored: true });
    }

    const payload = check(GitHubPushPayload, json);
    if (!payload.ok) return refuse(400, `not a valid push payload: ${payload.error}`, { delivery });
    const push = toPushMessage(payload.value, delivery, now());
    const outcome = await deps.deliveries.accept(delivery, pushTopic(push.repo), {
      publish: () => deps.publish(push).then(() => deps.observer?.published((performance.now() - received) / 1000)),
      canPublish: deps.isConnected,
      timeoutMs: deps.publishTimeoutMs,
      maxPending: deps.maxInFlight,
    });
    const fields = { delivery, repo: push.repo, ref: push.ref, sha: push.after };
    if (outcome.state === 'not-published') deps.log.warn({ ...fields, reason: outcome.reason }, 'push not published');
    else if (!outcome.duplicate) deps.log.info({ ...fields, pusher: push.pusher.name, state: outcome.state }, outcome.state === 'published' ? 'push published' : 'push handed to the MQTT client, not acknowledged yet');
    const entry = deliveryEntry({ address, delivery, event, push, outcome });
    // A 503 is answered at once (GitHub redelivers it); what was published is on disk before its answer.
    if (outcome.state === 'not-published') deps.audit?.note(entry);
    else await recorded(entry);
    answer(res, delivery, outcome);
    return outcome.state === 'not-published' ? outcome.state : outcome.duplicate ? 'duplicate' : outcome.state;
  };

  /** Waits for the entry's commit; a failed one is logged and the answer still given (it says what was published). */
  const recorded = async (entry: AuditInput): Promise<void> => {
    await deps.audit?.record(entry).catch((err: unknown) => deps.log.warn({ err: (err as Error).message, delivery: entry.target }, 'delivery not written to the audit log'));
  };

  const resultOf = (status: number): DeliveryResult => (status < 300 ? 'ignored' : status === 503 ? 'not-published' : status >= 500 ? 'error' : 'rejected');

  return (req, res) => {
    handle(req, res)
      .catch((err: unknown) => {
        deps.log.error({ err, path: req.url }, 'unhandled error in webhook request');
        if (!res.headersSent) reply(res, 500, { error: 'internal error; see the hub log' });
      })
      .then((result) => deps.observer?.delivered(result ?? resultOf(res.statusCode)));
  };
}

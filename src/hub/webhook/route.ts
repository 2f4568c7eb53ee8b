import type { IncomingMessage, ServerResponse } from 'node:http';
import { Webhooks } from '@octokit/webhooks';
import { z } from 'zod';
import { check, type PushMessage } from '../../shared/messages.js';
import { pushTopic } from '../../shared/topics.js';
import type { Logger } from '../../shared/logger.js';
import { GitHubPushPayload, toPushMessage } from './github-push.js';
import type { AuditLog } from '../audit/audit-log.js';
import { deliveryEntry } from '../audit/delivery-entries.js';
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
  /** Why no push can be taken now, whatever the broker does (the state directory is gone), or undefined. */
  unavailable(): string | undefined;
  log: Logger;
  now?: () => Date;
  /** Told of every answer on the webhook path and of each push's PUBACK (recent deliveries, /metrics). */
  observer?: WebhookObserver;
  /** Where every answer is recorded: a 2xx before it is sent, a refusal without waiting. */
  audit?: Pick<AuditLog, 'record' | 'note'>;
};

/**
 * What became of a webhook request: a push's DeliveryOutcome (`duplicate` for a copy of one
 * already handed over), `ignored` (ping, other events), `rejected` (4xx: signature, headers,
 * body), `not-published` (503) or `error` (500).
 */
export const DELIVERY_RESULTS = ['published', 'publishing', 'in-doubt', 'duplicate', 'not-published', 'ignored', 'rejected', 'error'] as const;
export type DeliveryResult = (typeof DELIVERY_RESULTS)[number];

export type WebhookObserver = {
  /** Every answer, once sent. */
  answered(answer: WebhookAnswer): void;
  /** Seconds from the request's arrival to the broker's PUBACK of its push (event and head), however late. */
  published(seconds: number): void;
};

/**
 * One answer of the webhook path: its status, the error the sender got (undefined on success),
 * the delivery and event the headers named (well-formed, verified only once `verified`), and for
 * a push taken, the push and what became of it.
 */
export type WebhookAnswer = {
  status: number;
  result: DeliveryResult;
  error?: string;
  delivery?: string;
  event?: string;
  verified: boolean;
  push?: PushMessage;
  outcome?: DeliveryOutcome;
  address?: string;
  /** Its audit entry was written with the delivery's row (a push taken now). */
  recorded?: boolean;
};

const SIGNATURE = /^sha256=[0-9a-f]{64}$/;
// GitHub's event names are lowercase words joined by underscores, digits included (projects_v2_item).
const EVENT_NAME = /^[a-z0-9_]{1,64}$/;
const DELIVERY_ID = /^[A-Za-z0-9-]{1,100}$/;
const Meta = z.object({
  'x-github-event': z.string().regex(EVENT_NAME, 'expected a GitHub event name'),
  'x-github-delivery': z.string().regex(DELIVERY_ID, 'expected a delivery GUID'),
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

type Send = (status: number, body: Record<string, unknown>, headers?: Record<string, string>, close?: boolean) => void;

const resultOf = (status: number): DeliveryResult => (status < 300 ? 'ignored' : status === 503 ? 'not-published' : status >= 500 ? 'error' : 'rejected');
const resultOfOutcome = (outcome: DeliveryOutcome): DeliveryResult => (outcome.state === 'not-published' ? outcome.state : outcome.duplicate ? 'duplicate' : outcome.state);

/** The answer for what became of a delivery: 200 and 202 say published or held, 503 nothing. */
function answer(send: Send, delivery: string, outcome: DeliveryOutcome): void {
  if (outcome.state === 'not-published') {
    return send(503, { error: `${outcome.reason}: nothing was published; redeliver later` }, outcome.busy ? { 'retry-after': '1' } : {});
  }
  const { state, duplicate, topic } = outcome;
  if (state === 'published') return send(200, { ok: true, delivery, topic, duplicate, state });
  const message =
    state === 'publishing'
      ? 'handed to the MQTT client, not acknowledged by the broker yet: it goes out when the broker reads its connection again (if that connection breaks first, it stays in doubt) and is never published twice'
      : 'handed to the broker but never acknowledged (the hub restarted, or its broker connection broke); it may have been published and is not published again';
  return send(202, { ok: true, delivery, topic, duplicate, state, message });
}

/** The delivery GUID and event a request's headers name, when well-formed (before anything is verified). */
function claimed(req: IncomingMessage): Pick<WebhookAnswer, 'delivery' | 'event'> {
  const delivery = header(req, 'x-github-delivery');
  const event = header(req, 'x-github-event');
  return { ...(delivery !== undefined && DELIVERY_ID.test(delivery) && { delivery }), ...(event !== undefined && EVENT_NAME.test(event) && { event }) };
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

  const handle = async (req: IncomingMessage, res: ServerResponse, facts: WebhookAnswer): Promise<void> => {
    const received = performance.now();
    const send: Send = (status, body, headers = {}, close = false) => {
      facts.status = status;
      facts.result = facts.outcome ? resultOfOutcome(facts.outcome) : resultOf(status);
      if (typeof body.error === 'string') facts.error = body.error;
      const sent = (): void => {
        if (close) replyAndClose(req, res, status, body);
        else reply(res, status, body, headers);
        deps.observer?.answered(facts);
      };
      // A push taken now was recorded with its delivery row (`recording` below), before it was published.
      if (!deps.audit || (status < 300 && facts.recorded)) return sent();
      // What was taken is in the audit log before it is answered; a refusal (or a 503, which GitHub
      // redelivers) is answered at once, so a flood never waits on the disk.
      const entry = deliveryEntry(facts);
      if (status >= 300) return void (deps.audit.note(entry), sent());
      deps.audit
        .record(entry)
        .catch((err: unknown) => deps.log.warn({ err: (err as Error).message, delivery: facts.delivery }, 'delivery not written to the audit log; answering anyway'))
        .finally(sent);
    };
    const unavailable = deps.unavailable();
    if (unavailable !== undefined) return send(503, { error: unavailable }, {}, true);
    let body: Buffer;
    try {
      body = await readBody(req, { maxBytes: deps.maxBodyBytes, deadlineMs: deps.bodyTimeoutMs, budget });
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      return send(err.status, { error: err.message }, err.retryAfter ? { 'retry-after': '1' } : {}, err.closeConnection);
    }
    // Held until answered: the body and what is built from it live that long.
    if (res.closed) budget.release(body.length);
    else res.once('close', () => budget.release(body.length));
    const signature = header(req, 'x-hub-signature-256');
    if (signature === undefined || !SIGNATURE.test(signature)) {
      return send(401, { error: 'missing or malformed X-Hub-Signature-256 header (expected sha256=<64 hex>)' });
    }
    if (body.length === 0) return send(400, { error: 'empty body: expected the JSON payload of a GitHub event' });
    const raw = body.toString('utf8');
    if (!(await webhooks.verify(raw, signature))) {
      return send(401, { error: 'signature does not match: check the webhook secret in GitHub and the hub' });
    }
    facts.verified = true;
    const meta = check(Meta, { 'x-github-event': header(req, 'x-github-event'), 'x-github-delivery': header(req, 'x-github-delivery') });
    if (!meta.ok) return send(400, { error: `bad headers: ${meta.error}` });
    const event = meta.value['x-github-event'];
    const delivery = meta.value['x-github-delivery'];

    let json: unknown;
    try {
      json = JSON.parse(payloadText(req, raw));
    } catch (err) {
      return send(400, { error: `body is not valid JSON: ${(err as Error).message}` });
    }
    if (event === 'ping') return send(200, { ok: true, event, delivery, message: 'pong' });
    if (event !== 'push') return send(200, { ok: true, event, delivery, ignored: true });

    const payload = check(GitHubPushPayload, json);
    if (!payload.ok) return send(400, { error: `not a valid push payload: ${payload.error}` });
    const push = toPushMessage(payload.value, delivery, now());
    facts.push = push;
    const outcome = await deps.deliveries.accept(delivery, pushTopic(push.repo), {
      publish: () => deps.publish(push).then(() => deps.observer?.published((performance.now() - received) / 1000)),
      canPublish: deps.isConnected,
      timeoutMs: deps.publishTimeoutMs,
      maxPending: deps.maxInFlight,
      recording: () => {
        if (!deps.audit) return;
        facts.recorded = true;
        deps.audit.note(deliveryEntry(facts));
      },
    });
    const fields = { delivery, repo: push.repo, ref: push.ref, sha: push.after };
    if (outcome.state === 'not-published') deps.log.warn({ ...fields, reason: outcome.reason }, 'push not published');
    else if (!outcome.duplicate) deps.log.info({ ...fields, pusher: push.pusher.name, state: outcome.state }, outcome.state === 'published' ? 'push published' : 'push handed to the MQTT client, not acknowledged yet');
    facts.outcome = outcome;
    answer(send, delivery, outcome);
  };

  return (req, res) => {
    const facts: WebhookAnswer = { status: 0, result: 'error', verified: false, ...claimed(req), ...(req.socket.remoteAddress !== undefined && { address: req.socket.remoteAddress }) };
    handle(req, res, facts).catch((err: unknown) => {
      deps.log.error({ err, path: req.url }, 'unhandled error in webhook request');
      if (res.headersSent) return;
      reply(res, 500, { error: 'internal error; see the hub log' });
      deps.observer?.answered({ ...facts, status: 500, result: 'error', error: 'internal error; see the hub log' });
    });
  };
}

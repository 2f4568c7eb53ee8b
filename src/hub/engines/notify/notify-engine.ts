import { decode, SCHEMA_VERSION, type PushMessage } from '../../../shared/messages.js';
import { NotifyRequest, type NotifyReply } from '../../../shared/contract/notify-messages.js';
import { NOTIFY_REQUEST, notifyReplyTopic, pushTopic } from '../../../shared/topics.js';
import { publishAndForget, type Engine, type EngineContext } from '../engine.js';
import type { DeliveryLog, DeliveryOutcome } from '../../webhook/deliveries.js';

export type NotifyDeps = {
  deliveries: DeliveryLog;
  /** Publishes the push and its (signed) head; resolves on the broker's acknowledgement. */
  sendPush(push: PushMessage): Promise<void>;
  isConnected(): boolean;
  timeoutMs: number;
  maxPending: number;
};

/**
 * Pushes from `pushfleet notify` (hooks/post-receive), which may not publish heads itself: only
 * the hub signs them. Each request goes through the webhook's DeliveryLog (recorded before it is
 * published, at most once per deliveryId) and is answered on its reply topic.
 */
export class NotifyRequests implements Engine {
  readonly name = 'notify';
  readonly subscriptions = [NOTIFY_REQUEST];

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: NotifyDeps,
  ) {}

  async start(): Promise<void> {}

  async handle(_topic: string, payload: Buffer): Promise<void> {
    const req = decode(NotifyRequest, payload);
    if (!req.ok) return void this.ctx.log.warn({ error: req.error }, 'ignored malformed notify request');
    // The hub's clock orders heads, not the hook host's.
    const push: PushMessage = { ...req.value.push, receivedAt: new Date(this.ctx.clock.now()).toISOString() };
    const outcome = await this.deps.deliveries.accept(push.deliveryId, pushTopic(push.repo), {
      publish: () => this.deps.sendPush(push),
      canPublish: this.deps.isConnected,
      timeoutMs: this.deps.timeoutMs,
      maxPending: this.deps.maxPending,
    });
    const reply: NotifyReply = { v: SCHEMA_VERSION, requestId: req.value.requestId, ...answer(outcome) };
    this.ctx.log.info({ delivery: push.deliveryId, repo: push.repo, ref: push.ref, sha: push.after, state: reply.state }, 'notify request answered');
    publishAndForget(this.ctx, this.name, notifyReplyTopic(req.value.requestId), JSON.stringify(reply));
  }

  async stop(): Promise<void> {}
}

function answer(outcome: DeliveryOutcome): Pick<NotifyReply, 'state' | 'detail'> {
  if (outcome.state === 'not-published') return { state: 'not-published', detail: outcome.reason };
  if (outcome.state === 'published') return outcome.duplicate ? { state: 'duplicate', detail: 'an earlier request with this delivery id was published' } : { state: 'published', detail: `published on ${outcome.topic}` };
  return { state: 'in-doubt', detail: 'handed to the broker, not acknowledged in time; it is not published again' };
}

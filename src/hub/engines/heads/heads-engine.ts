import { refuseHead } from '../../../shared/head-check.js';
import { decode, PushMessage } from '../../../shared/messages.js';
import { HEADS_ALL } from '../../../shared/topics.js';
import type { Engine, EngineContext } from '../engine.js';
import type { HeadStore } from './head-store.js';

/**
 * Keeps every ref's retained head in the hub's state, whoever published it (webhook or a
 * post-receive hook), and puts them back on an embedded broker after a hub restart, which
 * would otherwise forget them and leave offline agents nothing to converge on.
 */
export class HeadsEngine implements Engine {
  readonly name = 'heads';
  readonly subscriptions = [HEADS_ALL];

  constructor(
    private readonly ctx: EngineContext,
    private readonly store: HeadStore,
    private readonly restoreOnStart: boolean,
  ) {}

  async start(): Promise<void> {
    if (!this.restoreOnStart) return;
    const heads = this.store.list();
    await Promise.all(heads.map((h) => this.ctx.publisher.publish(h.topic, h.payload, { qos: 1, retain: true })));
    if (heads.length) this.ctx.log.info({ heads: heads.length }, 'restored retained heads to the embedded broker');
  }

  handle(topic: string, payload: Buffer): void {
    // The hub's own webhook publishes were built with the schema and are stored on PUBACK.
    if (this.store.takeOwnEcho(topic, payload)) return;
    if (payload.length > 0) {
      const push = decode(PushMessage, payload);
      if (!push.ok) {
        this.ctx.log.warn({ topic, error: push.error }, 'ignored malformed retained head');
        return;
      }
      // Kept heads are restored to the broker after a restart: a bad one would come back each time.
      const refusal = refuseHead(topic, push.value, this.ctx.clock.now());
      if (refusal) {
        this.ctx.log.warn({ topic, delivery: push.value.deliveryId, reason: refusal }, 'refused retained head');
        return;
      }
    }
    this.store.put(topic, payload).catch((err: unknown) => this.ctx.log.error({ topic, err }, 'could not store retained head'));
  }

  async stop(): Promise<void> {}
}

import { HEADS_ALL } from '../../../shared/topics.js';
import type { Engine, EngineContext } from '../engine.js';
import type { HeadStore } from './head-store.js';

/** Publishes bytes as they are, for heads the hub signed when it first published them. */
export type Republish = (topic: string, payload: Buffer) => Promise<unknown>;

/**
 * Keeps the heads the hub published itself and nothing else. It puts them back on an embedded
 * broker after a hub restart (which would otherwise forget them and leave offline agents nothing
 * to converge on), and puts the hub's own newest head back over a head anyone else published on
 * its topic (or clears the topic when the hub has none), so a forged head neither stays retained
 * nor reaches the hub's state.
 */
export class HeadsEngine implements Engine {
  readonly name = 'heads';
  readonly subscriptions = [HEADS_ALL];

  constructor(
    private readonly ctx: EngineContext,
    private readonly store: HeadStore,
    private readonly republish: Republish,
    private readonly restoreOnStart: boolean,
  ) {}

  async start(): Promise<void> {
    if (!this.restoreOnStart) return;
    const heads = this.store.list();
    await Promise.all(heads.map((h) => this.republish(h.topic, Buffer.from(h.wire))));
    if (heads.length) this.ctx.log.info({ heads: heads.length }, 'restored retained heads to the embedded broker');
  }

  handle(topic: string, payload: Buffer): void {
    if (this.store.takeOwnEcho(topic, payload)) return;
    const own = this.store.newestOwn(topic);
    // A copy of its own (an external broker kept it across the hub's restart), or nothing on a topic it never used.
    if (own.equals(payload)) return;
    this.ctx.log.warn({ topic, bytes: payload.length, restored: own.length > 0 }, 'a head the hub did not publish: putting its own back');
    this.republish(topic, own).catch((err: unknown) => this.ctx.log.warn({ topic, err: (err as Error).message }, 'could not put the hub\'s own head back'));
  }

  async stop(): Promise<void> {}
}

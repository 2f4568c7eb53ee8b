import { decode, PushMessage } from '../../../shared/messages.js';
import { HEADS_ALL } from '../../../shared/topics.js';
import type { Engine, EngineContext } from '../engine.js';

/**
 * Keeps every ref's retained head in the hub's state, whoever published it (webhook or a
 * post-receive hook), and puts them back on an embedded broker after a hub restart, which
 * would otherwise forget them and leave offline agents nothing to converge on.
 */
export class HeadsEngine implements Engine {
  readonly name = 'heads';
  readonly subscriptions = [HEADS_ALL];
  private readonly upsert;
  private readonly remove;
  private readonly all;

  constructor(
    private readonly ctx: EngineContext,
    private readonly restoreOnStart: boolean,
  ) {
    ctx.db.exec('CREATE TABLE IF NOT EXISTS heads (topic TEXT PRIMARY KEY, payload TEXT NOT NULL)');
    this.upsert = ctx.db.prepare('INSERT INTO heads (topic, payload) VALUES (?, ?) ON CONFLICT(topic) DO UPDATE SET payload = excluded.payload');
    this.remove = ctx.db.prepare('DELETE FROM heads WHERE topic = ?');
    this.all = ctx.db.prepare<[], { topic: string; payload: string }>('SELECT topic, payload FROM heads');
  }

  async start(): Promise<void> {
    if (!this.restoreOnStart) return;
    const heads = this.all.all();
    await Promise.all(heads.map((h) => this.ctx.publisher.publish(h.topic, h.payload, { qos: 1, retain: true })));
    if (heads.length) this.ctx.log.info({ heads: heads.length }, 'restored retained heads to the embedded broker');
  }

  handle(topic: string, payload: Buffer): void {
    if (payload.length === 0) {
      this.remove.run(topic);
      return;
    }
    const push = decode(PushMessage, payload);
    if (!push.ok) {
      this.ctx.log.warn({ topic, error: push.error }, 'ignored malformed retained head');
      return;
    }
    this.upsert.run(topic, payload.toString('utf8'));
  }

  async stop(): Promise<void> {}
}

import type { IPublishPacket } from 'mqtt';
import type { Logger } from '../../shared/logger.js';
import { CLOSE_DEADLINE_MS, settledWithin } from '../../shared/mqtt-connection.js';
import { topicMatches } from '../../shared/topic-match.js';
import type { Engine } from './engine.js';

const MAX_ROUTES = 10_000;

type OnMessage = (topic: string, payload: Buffer, packet?: Pick<IPublishPacket, 'retain' | 'dup' | 'messageId'>) => void;

/** Where the engines' messages come from: the hub's MQTT client, or the embedded broker's router (InProcessInbox). */
export type MessageSource = {
  readonly connected: boolean;
  on(event: 'message', listener: OnMessage): unknown;
  off(event: 'message', listener: OnMessage): unknown;
  subscribeAsync(filters: string[], opts: { qos: 1 }): Promise<unknown>;
  unsubscribeAsync(filters: string[]): Promise<unknown>;
};

/**
 * Routes MQTT messages to the engines that subscribed to them. Each handler's error is caught and
 * logged with engine and topic: a bad message never takes the hub down.
 */
export class Dispatcher {
  constructor(
    private readonly mqtt: MessageSource,
    private readonly engines: readonly Engine[],
    private readonly log: Logger,
  ) {}

  /** Engines per topic: a hub sees few distinct topics, and matching every filter per message showed in profiles. */
  private readonly routes = new Map<string, readonly Engine[]>();

  private enginesFor(topic: string): readonly Engine[] {
    let engines = this.routes.get(topic);
    if (!engines) {
      if (this.routes.size >= MAX_ROUTES) this.routes.clear();
      engines = this.engines.filter((e) => e.subscriptions.some((f) => topicMatches(f, topic)));
      this.routes.set(topic, engines);
    }
    return engines;
  }

  private readonly onMessage: OnMessage = (topic, payload, packet) => {
    const delivery = { messageId: packet?.messageId, dup: packet?.dup === true, retained: packet?.retain === true };
    for (const engine of this.enginesFor(topic)) {
      try {
        const done = engine.handle(topic, payload, delivery);
        if (done) done.catch((err: unknown) => this.failed(engine, topic, payload, err));
      } catch (err) {
        this.failed(engine, topic, payload, err);
      }
    }
  };

  private failed(engine: Engine, topic: string, payload: Buffer, err: unknown): void {
    this.log.error({ engine: engine.name, topic, payload: payload.toString('utf8', 0, 200), err }, 'engine handler failed');
  }

  /** Every engine's filters, each once. */
  private get filters(): string[] {
    return [...new Set(this.engines.flatMap((e) => e.subscriptions))];
  }

  /** The filters subscribed on the broker; null before start. */
  private subscribed: Set<string> | null = null;
  private resubscribing: Promise<void> = Promise.resolve();

  async start(): Promise<void> {
    for (const engine of this.engines) engine.onSubscriptionsChange?.(() => this.resubscribe());
    for (const engine of this.engines) await engine.start();
    this.mqtt.on('message', this.onMessage);
    const filters = this.filters;
    if (filters.length) await this.mqtt.subscribeAsync(filters, { qos: 1 });
    this.subscribed = new Set(filters);
  }

  /**
   * Subscribes the filters an engine added and unsubscribes those no engine serves any more,
   * one change at a time. Before start there is nothing to do: start subscribes them all.
   */
  resubscribe(): Promise<void> {
    this.routes.clear();
    this.resubscribing = this.resubscribing.then(async () => {
      const had = this.subscribed;
      if (!had) return;
      const want = new Set(this.filters);
      const added = [...want].filter((f) => !had.has(f));
      const gone = [...had].filter((f) => !want.has(f));
      this.subscribed = want;
      if (added.length) await this.mqtt.subscribeAsync(added, { qos: 1 });
      if (gone.length) await this.mqtt.unsubscribeAsync(gone);
    });
    return this.resubscribing;
  }

  /**
   * Unsubscribes while the client is still connected (so a broker that keeps the session does not
   * keep queueing for engines that are gone), then stops the engines in reverse start order.
   */
  async stop(): Promise<void> {
    const filters = this.filters;
    // Only while connected: an UNSUBSCRIBE to a broker that is gone would wait for the reconnect.
    if (filters.length && this.mqtt.connected) {
      const unsubscribed = this.mqtt.unsubscribeAsync(filters).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'engine unsubscribe failed'));
      // A broker that goes away meanwhile would keep the UNSUBACK (and the stop) waiting forever.
      if (!(await settledWithin(unsubscribed, CLOSE_DEADLINE_MS))) this.log.warn('engine unsubscribe not acknowledged; stopping anyway');
    }
    this.mqtt.off('message', this.onMessage);
    for (const engine of [...this.engines].reverse()) await engine.stop();
  }
}

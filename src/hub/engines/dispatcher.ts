import type { MqttClient } from 'mqtt';
import type { Logger } from '../../shared/logger.js';
import { CLOSE_DEADLINE_MS, settledWithin } from '../../shared/mqtt-connection.js';
import { topicMatches } from '../../shared/topic-match.js';
import type { Engine } from './engine.js';

const MAX_ROUTES = 10_000;

/**
 * Routes MQTT messages to the engines that subscribed to them. Each handler's error is caught and
 * logged with engine and topic: a bad message never takes the hub down.
 */
export class Dispatcher {
  constructor(
    private readonly mqtt: MqttClient,
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

  private readonly onMessage = (topic: string, payload: Buffer): void => {
    for (const engine of this.enginesFor(topic)) {
      try {
        const done = engine.handle(topic, payload);
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

  async start(): Promise<void> {
    for (const engine of this.engines) await engine.start();
    this.mqtt.on('message', this.onMessage);
    const filters = this.filters;
    if (filters.length) await this.mqtt.subscribeAsync(filters, { qos: 1 });
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

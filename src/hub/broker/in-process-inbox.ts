import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';

type RoutedPacket = { topic: string; payload: Buffer | string };
type Route = (packet: RoutedPacket, done: () => void) => void;

/** The parts of aedes the inbox uses: its router (mqemitter) and the retained messages of its persistence. */
export type AedesRouter = {
  subscribe(filter: string, route: Route, done: () => void): void;
  unsubscribe(filter: string, route: Route, done: () => void): void;
  persistence: { createRetainedStreamCombi(filters: string[]): Readable };
  closed: boolean;
};

/** What a message handed over in-process says of itself (the dispatcher's view of a PUBLISH). */
type Delivered = { retain: boolean; dup: false };

/**
 * The hub's inbound messages straight from the embedded broker's router, in its own process:
 * each message matching a filter is handed to the 'message' listeners as the hub's MQTT client
 * would (topic, payload, retain flag), without aedes encoding a PUBLISH for that client, the
 * client parsing it again and both sides exchanging its PUBACK — the largest share of the hub's
 * work per inbound message (a semaphore register, an agent's app state). It sees what a
 * subscriber sees: a QoS 1 message once the broker has stored and acknowledged it, a filter's
 * retained messages (retain set) once subscribed. Listeners run in a microtask after the
 * broker's own step, in arrival order, never inside it.
 */
export class InProcessInbox extends EventEmitter {
  private readonly routes = new Map<string, Route>();
  private queue: [string, Buffer, Delivered][] = [];

  constructor(private readonly aedes: AedesRouter) {
    super();
  }

  /** Like a client's: until the broker closes. */
  get connected(): boolean {
    return !this.aedes.closed;
  }

  /** Routes `filters` here (each once), then hands over their retained messages, as a SUBSCRIBE does. */
  async subscribeAsync(filters: string[], _opts?: { qos: 0 | 1 }): Promise<void> {
    const fresh = filters.filter((f) => !this.routes.has(f));
    await Promise.all(
      fresh.map((filter) => {
        // One route per filter, as aedes has one per subscription: a message matching two filters comes twice, as to a client.
        const route: Route = (packet, done) => {
          // [MQTT-4.7.2-1]: a wildcard never matches the broker's own $SYS topics for a client.
          if (!(packet.topic.startsWith('$') && /^[#+]/.test(filter))) this.deliver(packet.topic, packet.payload, false);
          done();
        };
        this.routes.set(filter, route);
        return new Promise<void>((resolve) => this.aedes.subscribe(filter, route, resolve));
      }),
    );
    if (fresh.length === 0) return;
    for await (const packet of this.aedes.persistence.createRetainedStreamCombi(fresh) as AsyncIterable<RoutedPacket>) this.deliver(packet.topic, packet.payload, true);
  }

  async unsubscribeAsync(filters: string[]): Promise<void> {
    await Promise.all(
      filters.map((filter) => {
        const route = this.routes.get(filter);
        this.routes.delete(filter);
        return route && new Promise<void>((resolve) => this.aedes.unsubscribe(filter, route, resolve));
      }),
    );
  }

  private deliver(topic: string, payload: Buffer | string, retain: boolean): void {
    this.queue.push([topic, typeof payload === 'string' ? Buffer.from(payload) : payload, { retain, dup: false }]);
    if (this.queue.length === 1) queueMicrotask(() => this.drain());
  }

  private drain(): void {
    const queue = this.queue;
    this.queue = [];
    for (const [topic, payload, packet] of queue) this.emit('message', topic, payload, packet);
  }
}

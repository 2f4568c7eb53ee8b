import type { Logger } from '../../shared/logger.js';
import type { StateDb } from '../state-db.js';
import type { TickBatch } from '../tick-batch.js';
import type { TopicContract } from '../../shared/contract/topic-table.js';
import type { HubArea } from '../hub-events.js';

/** What an engine may publish with; the hub's MQTT client satisfies it, tests pass a fake. */
export type Publisher = {
  publish(topic: string, payload: string, opts: { qos: 0 | 1; retain?: boolean }): Promise<void>;
};

/** The clock, passed in so engines are tested with fake time. */
export type Clock = {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
};

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export type EngineContext = {
  publisher: Publisher;
  db: StateDb;
  /** The hub's one commit per event-loop turn, for engines that group their writes (the semaphore); without it they commit each. */
  batch?: TickBatch;
  clock: Clock;
  log: Logger;
  /** Reads the retained messages the broker keeps on `filters`, once (subscribe, collect, unsubscribe); the hub passes it. */
  readRetained?(filters: string[], onMessage: (topic: string, payload: Buffer) => void): Promise<void>;
  /** The inner payload of a message the hub signed itself (null: not its own); unsigned topics pass as they are. */
  unseal?(topic: string, payload: Buffer): Buffer | null;
  /** The topic table the broker's door uses; the jobs engine tells it the table's trigger filters. */
  contract?: TopicContract;
  /** Tells the hub's followers (HubEvents: the page's live updates) that an engine's state changed. */
  changed?(area: HubArea, id?: string): void;
};

/**
 * Publishes without waiting, for engines that answer and move on: a failed publish (broker gone,
 * no PUBACK) is logged with the engine's name and the topic, never thrown into the dispatcher.
 */
export function publishAndForget(ctx: Pick<EngineContext, 'publisher' | 'log'>, engine: string, topic: string, payload: string, opts: { qos: 0 | 1; retain?: boolean } = { qos: 1 }): void {
  ctx.publisher.publish(topic, payload, opts).catch((err: unknown) => ctx.log.warn({ engine, topic, err: (err as Error).message }, `${engine} publish failed`));
}

/**
 * An engine of the hub: it declares the topic filters it serves, handles each message on them,
 * and owns its timers between start and stop. Constructors only store dependencies.
 */
export interface Engine {
  readonly name: string;
  readonly subscriptions: readonly string[];
  /**
   * For an engine whose filters change at run time (the jobs table): the dispatcher passes,
   * before start, the call that brings the hub's subscriptions in line with `subscriptions`.
   */
  onSubscriptionsChange?(resubscribe: () => Promise<void>): void;
  start(): Promise<void>;
  handle(topic: string, payload: Buffer, delivery?: Delivery): void | Promise<void>;
  stop(): Promise<void>;
}

/**
 * How a message came: its QoS 1 packet id, whether the broker says it is a redelivery (DUP), and
 * whether it is a retained copy sent for a subscription rather than a message published now.
 */
export type Delivery = { messageId?: number; dup: boolean; retained?: boolean };

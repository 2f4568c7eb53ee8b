import { Readable } from 'node:stream';
import { MemoryPersistence, Packet, stored, type ClientRef, type Sub, type SubRecord } from './aedes-memory.js';
import type { BrokerStore, StoredPacket } from './broker-store.js';
import { RetainedIndex } from './retained-index.js';

/** A queued message, stored once however many queues hold it. */
type Message = { id: number; packet: StoredPacket; refs: number; keys: string[] };
/** How aedes names a publish when it delivers it or asks about it: broker id and counter. */
const identity = (p: StoredPacket): string => `${p.brokerId as string}\u0000${p.brokerCounter as number}`;
/**
 * One queue entry; without `message` it is a PUBREL awaiting PUBCOMP. `sentTo` stands for the
 * connection it was last sent on (aedes passes one client object per connection), or for the
 * previous run of the broker.
 */
type Entry = { seq: number; message: Message | undefined; messageId: number | undefined; sentTo: object | undefined };
const PREVIOUS_RUN = {};
/** A small stand-in per connection, so an entry does not keep a gone client object alive. */
const connections = new WeakMap<object, object>();
const connection = (client: object): object => {
  let token = connections.get(client);
  if (!token) connections.set(client, (token = {}));
  return token;
};
/** What a client's QoS 1 PUBLISH stored before its PUBACK, for aedes' own publish of it to skip. */
type Staged = { message: Message | undefined; clients: Set<string>; retained: boolean };

export type SqlitePersistenceOptions = {
  /** Clients living in the broker's own process: their wills die with it and are not stored. */
  isInProcess?: (client: object) => boolean;
  /**
   * Retained topics kept in memory only: an engine of this process publishes them again from its
   * own durable state at every start (the semaphore's go and expired, from its jobs). Writing
   * them too cost a second commit per grant, and the go waited for it before it was delivered.
   */
  memoryOnlyRetained?: (topic: string) => boolean;
};

/**
 * An aedes persistence that keeps sessions, subscriptions, retained messages, wills and
 * unacknowledged QoS 1/2 messages in SQLite (`BrokerStore`). Reads come from memory (the
 * in-memory persistence's indexes for subscriptions and incoming; a topic tree for retained,
 * `RetainedIndex`; own queues for outgoing and wills), loaded at start; each change is written
 * through in per-turn batches and applied to memory once committed (a retained message is shown
 * at once and taken back if its write fails). aedes' acknowledgements (PUBACK, SUBACK, the
 * in-process publish callback) and its deliveries of a QoS 1/2 message wait for the disk.
 */
export class SqlitePersistence {
  private readonly memory = new MemoryPersistence();
  private readonly queues = new Map<string, Entry[]>();
  private readonly wills = new Map<string, StoredPacket>();
  private readonly withIncoming = new Set<string>();
  private readonly staged = new WeakMap<Buffer, Staged>();
  /** The retained messages as shown. */
  private readonly retained = new RetainedIndex();
  private readonly retainedWrites = new WeakMap<object, Promise<void>>();
  private nextMessage = 0;
  private nextSeq = 0;
  private provisional = 0;
  private emitted = 0;
  /** Queued messages by every identity aedes may ask about them with. */
  private readonly byIdentity = new Map<string, Message>();
  private broker: { id: string } | undefined;

  constructor(
    private readonly store: BrokerStore,
    private readonly opts: SqlitePersistenceOptions = {},
  ) {}

  async setup(broker: { id: string }): Promise<void> {
    this.broker = broker;
    await this.memory.setup(broker);
    const snap = this.store.load();
    for (const packet of snap.retained) {
      // Left by a run that still wrote them: its engine publishes them again, so the row goes.
      if (this.opts.memoryOnlyRetained?.(packet.topic!)) this.store.storeRetained(packet.topic!, undefined).catch(() => undefined);
      else this.retained.set(packet.topic!, packet);
    }
    for (const { clientId, subs } of snap.subscriptions) await this.memory.addSubscriptions({ id: clientId }, subs as SubRecord[]);
    for (const { clientId, packet } of snap.incoming) {
      await this.memory.incomingStorePacket({ id: clientId }, packet);
      this.withIncoming.add(clientId);
    }
    for (const { clientId, packet } of snap.wills) this.wills.set(clientId, packet);
    const messages = new Map([...snap.messages].map(([id, packet]) => [id, { id, packet, refs: 0, keys: [] } as Message]));
    for (const row of snap.outgoing) {
      const message = row.message === null ? undefined : messages.get(row.message);
      if (row.message !== null && !message) continue;
      if (message && message.refs++ === 0) this.known(message, identity(message.packet));
      const sent = row.messageId !== null;
      this.queue(row.clientId).push({ seq: row.seq, message, messageId: row.messageId ?? undefined, sentTo: sent ? PREVIOUS_RUN : undefined });
    }
    const max = this.store.maxIds();
    this.nextMessage = max.message;
    this.nextSeq = max.seq;
  }

  // Retained messages.

  /**
   * Shown at once and written in the next batch; aedes' next step for the packet
   * (`outgoingEnqueueCombi`) waits for that write, so nothing is acknowledged or delivered before
   * it is on disk. Waiting here instead would let later publishes overtake retained ones.
   */
  async storeRetained(packet: StoredPacket): Promise<void> {
    const staged = packet.payload && this.staged.get(packet.payload);
    if (staged?.retained) {
      staged.retained = false;
      return;
    }
    const topic = packet.topic!;
    const previous = this.retained.get(topic);
    // A copy: aedes goes on using its packet (and changes it) after this.
    const current = packet.payload?.length ? { ...packet } : undefined;
    this.retained.set(topic, current);
    if (this.opts.memoryOnlyRetained?.(topic)) return;
    const written = this.store.storeRetained(topic, current && stored(current)).catch((err: unknown) => {
      // Not on disk: take it back, unless a newer one replaced it meanwhile.
      if (this.retained.get(topic) === current) this.retained.set(topic, previous);
      throw err;
    });
    // A QoS 0 publish has no next step to report the failure to.
    written.catch(() => undefined);
    this.retainedWrites.set(packet, written);
  }

  createRetainedStream(pattern: string): Readable {
    return Readable.from(this.retained.match(pattern));
  }

  createRetainedStreamCombi(patterns: string[]): Readable {
    return Readable.from(patterns.flatMap((p) => this.retained.match(p)));
  }

  // Subscriptions (aedes calls these for clean: false clients only).

  async addSubscriptions(client: ClientRef, subs: SubRecord[]): Promise<void> {
    await this.store.addSubscriptions(client.id, subs.map((s) => ({ ...s })));
    await this.memory.addSubscriptions(client, subs);
  }

  async removeSubscriptions(client: ClientRef, topics: string[]): Promise<void> {
    await this.store.removeSubscriptions(client.id, topics);
    await this.memory.removeSubscriptions(client, topics);
  }

  subscriptionsByClient(client: ClientRef): Promise<SubRecord[]> {
    return this.memory.subscriptionsByClient(client);
  }

  countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return this.memory.countOffline();
  }

  subscriptionsByTopic(topic: string): Promise<Sub[]> {
    return this.memory.subscriptionsByTopic(topic);
  }

  async cleanSubscriptions(client: ClientRef): Promise<void> {
    // Every clean CONNECT lands here: write only when there is something to remove.
    if ((await this.memory.subscriptionsByClient(client)).length === 0) return;
    await this.store.removeSubscriptions(client.id, 'all');
    await this.memory.cleanSubscriptions(client);
  }

  getClientList(topic: string): Readable {
    return this.memory.getClientList(topic);
  }

  // Outgoing queues.

  outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void> {
    return this.outgoingEnqueueCombi([sub], packet);
  }

  /** aedes' last step before it delivers a QoS 1/2 publish and acknowledges it. */
  async outgoingEnqueueCombi(subs: { clientId: string }[], packet: StoredPacket): Promise<void> {
    const staged = packet.payload && this.staged.get(packet.payload);
    if (staged) {
      // Stored before the PUBACK already; aedes will ask about it by this packet's identity.
      this.staged.delete(packet.payload!);
      if (staged.message) this.known(staged.message, identity(packet));
      subs = subs.filter((s) => !staged.clients.has(s.clientId));
      if (subs.length > 0) await this.enqueue(subs, stored(packet));
      return;
    }
    // Every other publish waits for the batch, written or not, so they go out in the order they
    // came; and for its retained write, if it has one.
    const retained = this.retainedWrites.get(packet);
    this.retainedWrites.delete(packet);
    await this.enqueue(subs, subs.length > 0 ? stored(packet) : undefined);
    await retained;
  }

  /**
   * Called as aedes emits a QoS 1/2 publish to its subscribers. aedes skips a message for a
   * subscriber that already got one with a higher counter of the same broker id (a dedupe meant
   * for broker clusters); publishes that waited for the disk can be emitted in another order
   * than aedes drew their counters, and would be lost. So they are numbered again here, in
   * emission order, under an id of their own (QoS 0 messages keep aedes' numbering).
   */
  renumber(packet: StoredPacket): void {
    const message = this.byIdentity.size > 0 ? this.byIdentity.get(identity(packet)) : undefined;
    packet.brokerId = `${this.broker!.id}/emitted`;
    packet.brokerCounter = ++this.emitted;
    if (message) this.known(message, identity(packet));
  }

  /**
   * Queues `packet` for `subs`, and stores `retained`, in one write; shows both once committed.
   * A message row is deleted with the last entry that needs it; entries that leave at the same
   * moment may each leave it to the other, and then the row waits for the clean-up at the next
   * start, never the other way round.
   */
  private async enqueue(subs: { clientId: string }[], packet: StoredPacket | undefined, retained?: StoredPacket): Promise<Message | undefined> {
    const message: Message | undefined = packet && subs.length > 0 ? { id: ++this.nextMessage, packet, refs: 0, keys: [] } : undefined;
    const entries = message ? subs.map((s) => ({ clientId: s.clientId, entry: { seq: ++this.nextSeq, message, messageId: undefined, sentTo: undefined } as Entry })) : [];
    const kept = retained?.payload?.length ? { ...retained } : undefined;
    await Promise.all([
      this.store.enqueue(
        message && { id: message.id, packet: message.packet },
        entries.map((e) => ({ seq: e.entry.seq, clientId: e.clientId, message: message!.id })),
      ),
      retained && this.store.storeRetained(retained.topic!, kept && stored(kept)),
    ]);
    for (const { clientId, entry } of entries) this.queue(clientId).push(entry);
    if (message) {
      message.refs = entries.length;
      this.known(message, identity(packet!));
    }
    if (retained) this.retained.set(retained.topic!, kept);
    return message;
  }

  private known(message: Message, key: string): void {
    this.byIdentity.set(key, message);
    message.keys.push(key);
  }

  /** One queue entry less needs `message`. */
  private release(message: Message): void {
    if (--message.refs > 0) return;
    for (const key of message.keys) if (this.byIdentity.get(key) === message) this.byIdentity.delete(key);
  }

  async outgoingUpdate(client: ClientRef, packet: StoredPacket): Promise<void> {
    const queue = this.queues.get(client.id) ?? [];
    if (packet.cmd === 'pubrel') {
      const entry = queue.find((e) => e.messageId === packet.messageId);
      if (!entry) throw new Error('no such packet');
      if (!entry.message) return;
      const message = entry.message;
      await this.store.toPubrel(entry.seq, packet.messageId!, message.refs === 1 ? message.id : undefined);
      if (entry.message === message) {
        entry.message = undefined;
        this.release(message);
      }
      return;
    }
    const message = this.byIdentity.get(identity(packet));
    const entry = message && queue.find((e) => e.message === message);
    if (!entry) throw new Error('no such packet');
    // Sent before, on another connection or under another id: this copy may be a second one
    // [MQTT-3.3.1-1]. (The id of a resend is the old one; aedes can also deliver a message live and
    // from the queue while a session resumes, and then the second copy gets a new id.)
    if (entry.sentTo !== undefined && (entry.sentTo !== connection(client) || entry.messageId !== packet.messageId)) packet.dup = true;
    entry.sentTo = connection(client);
    if (entry.messageId === packet.messageId) return;
    // Durable before the PUBLISH goes out: a resend after a restart must reuse this id (QoS 2)
    // and carry DUP.
    await this.store.setMessageId(entry.seq, packet.messageId!);
    entry.messageId = packet.messageId;
  }

  async outgoingClearMessageId(client: ClientRef, packet: StoredPacket): Promise<StoredPacket | undefined> {
    const queue = this.queues.get(client.id);
    const entry = queue?.find((e) => e.messageId !== undefined && e.messageId === packet.messageId);
    if (!queue || !entry) return undefined;
    const message = entry.message;
    await this.store.dequeue(entry.seq, message?.refs === 1 ? message.id : undefined);
    const at = queue.indexOf(entry);
    if (at === -1) return toPacket(entry, client);
    queue.splice(at, 1);
    if (queue.length === 0) this.queues.delete(client.id);
    if (message) this.release(message);
    return toPacket(entry, client);
  }

  outgoingStream(client: ClientRef): Readable {
    return Readable.from((this.queues.get(client.id) ?? []).map((e) => toPacket(e, client)));
  }

  /**
   * For a client's QoS 1 PUBLISH, called before aedes sends its PUBACK (aedes itself stores the
   * message only after the PUBACK): queues it durably for the offline persistent subscribers and
   * stores it if retained. aedes' own publish of the packet then finds it done and skips it.
   */
  async persistBeforeAck(packet: StoredPacket): Promise<void> {
    const subs = await this.memory.subscriptionsByTopic(packet.topic!);
    // An identity aedes' counter never takes (it names the message in this store; aedes' publish
    // adds its own); the publisher's packet id means nothing to subscribers.
    const copy = stored({ ...packet, brokerId: this.broker!.id, brokerCounter: -++this.provisional, messageId: undefined });
    // Through the batch even with nothing to write, so a client's publishes keep their order.
    const message = await this.enqueue(subs, copy, packet.retain ? copy : undefined);
    if (Buffer.isBuffer(packet.payload)) this.staged.set(packet.payload, { message, clients: new Set(subs.map((s) => s.clientId)), retained: Boolean(packet.retain) });
  }

  // Incoming QoS 2 packets awaiting PUBREL.

  async incomingStorePacket(client: ClientRef, packet: StoredPacket): Promise<void> {
    const copy = new Packet(packet);
    copy.messageId = packet.messageId;
    await this.store.storeIncoming(client.id, packet.messageId!, stored(copy));
    await this.memory.incomingStorePacket(client, copy);
    this.withIncoming.add(client.id);
  }

  incomingGetPacket(client: ClientRef, packet: StoredPacket): Promise<StoredPacket> {
    return this.memory.incomingGetPacket(client, packet);
  }

  async incomingDelPacket(client: ClientRef, packet: StoredPacket): Promise<void> {
    await this.memory.incomingGetPacket(client, packet);
    await this.store.deleteIncoming(client.id, packet.messageId!);
    await this.memory.incomingDelPacket(client, packet).catch(() => undefined);
  }

  async cleanIncoming(client: ClientRef): Promise<void> {
    if (!this.withIncoming.has(client.id)) return;
    await this.store.deleteIncoming(client.id, 'all');
    await this.memory.cleanIncoming(client);
    this.withIncoming.delete(client.id);
  }

  // Wills, kept with the id of the broker that took them: after a restart that broker is gone,
  // so aedes' will sweep publishes the wills of clients that have not come back.

  async putWill(client: ClientRef, packet: StoredPacket): Promise<void> {
    packet.brokerId = this.broker!.id;
    packet.clientId = client.id;
    if (!this.opts.isInProcess?.(client)) await this.store.putWill(client.id, stored(packet));
    this.wills.set(client.id, packet);
  }

  async getWill(client: ClientRef): Promise<StoredPacket | undefined> {
    return this.wills.get(client.id);
  }

  async delWill(client: ClientRef): Promise<StoredPacket | undefined> {
    const will = this.wills.get(client.id);
    if (!will) return undefined;
    await this.store.putWill(client.id, undefined);
    if (this.wills.get(client.id) === will) this.wills.delete(client.id);
    return will;
  }

  streamWill(brokers: Record<string, unknown> = {}): Readable {
    return Readable.from([...this.wills.values()].filter((w) => !brokers[w.brokerId as string]));
  }

  async destroy(): Promise<void> {
    await this.memory.destroy();
    this.store.close();
  }

  private queue(clientId: string): Entry[] {
    let queue = this.queues.get(clientId);
    if (!queue) this.queues.set(clientId, (queue = []));
    return queue;
  }
}

/**
 * A queue entry as aedes resends it to `client`: flagged DUP if it went out before on another
 * connection, one of this broker's or the previous run's [MQTT-3.3.1-1].
 */
function toPacket(entry: Entry, client: object): StoredPacket {
  if (!entry.message) return { cmd: 'pubrel', messageId: entry.messageId };
  const packet = new Packet(entry.message.packet);
  packet.messageId = entry.messageId;
  if (entry.sentTo !== undefined && entry.sentTo !== connection(client)) packet.dup = true;
  return packet;
}

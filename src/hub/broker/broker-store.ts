import { deserialize, serialize } from 'node:v8';
import { openStateDb, stateDbFile, type StateDb } from '../state-db.js';
import { TickBatch } from '../tick-batch.js';

/** A packet as aedes hands it over: plain fields, Buffers inside (payload, v5 properties). */
export type StoredPacket = Record<string, unknown> & { topic?: string; payload?: Buffer; messageId?: number };

export type BrokerSnapshot = {
  retained: StoredPacket[];
  subscriptions: { clientId: string; subs: Record<string, unknown>[] }[];
  /** Queued messages, one row per distinct message, referenced by `outgoing`. */
  messages: Map<number, StoredPacket>;
  /** Per-client queues in arrival order; `message` null means the entry became a PUBREL. */
  outgoing: { seq: number; clientId: string; message: number | null; messageId: number | null }[];
  incoming: { clientId: string; packet: StoredPacket }[];
  wills: { clientId: string; packet: StoredPacket }[];
};

/** In the hub's state database, beside its own tables: one commit per event-loop turn covers both. */
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS broker_retained (topic TEXT PRIMARY KEY, packet BLOB NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS broker_subscriptions (client_id TEXT NOT NULL, topic TEXT NOT NULL, sub BLOB NOT NULL, PRIMARY KEY (client_id, topic)) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS broker_messages (id INTEGER PRIMARY KEY, packet BLOB NOT NULL);
  CREATE TABLE IF NOT EXISTS broker_outgoing (seq INTEGER PRIMARY KEY, client_id TEXT NOT NULL, message INTEGER, message_id INTEGER);
  CREATE TABLE IF NOT EXISTS broker_incoming (client_id TEXT NOT NULL, message_id INTEGER NOT NULL, packet BLOB NOT NULL, PRIMARY KEY (client_id, message_id)) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS broker_wills (client_id TEXT PRIMARY KEY, packet BLOB NOT NULL) WITHOUT ROWID;
`;

const encode = (value: unknown): Buffer => serialize(value);
const decodeBlob = <T>(blob: Buffer): T => deserialize(blob) as T;

/**
 * The embedded broker's session state on disk (`broker_*` tables of the hub's `hub.sqlite`, WAL). Writes are
 * grouped per event-loop turn (`TickBatch`): each caller's promise settles once its transaction
 * committed, so aedes acknowledges nothing that a kill -9 could still take away. A message queued
 * for many clients is stored once; each queue entry references it.
 */
export class BrokerStore {
  /** Writes asked for and not yet committed. */
  private pending = 0;
  private readonly st;
  private readonly pendingRetained = new Map<string, { packet: StoredPacket | undefined; written: Promise<void> }>();
  /** Whether the file held a broker's state before this start (false on the first start). */
  readonly existed: boolean;

  /**
   * On the hub's state database and its tick batch (`owned`: a connection of its own, closed with
   * the store, for a broker started on a state dir alone).
   */
  constructor(
    private readonly db: StateDb,
    private readonly batch: TickBatch,
    private readonly owned = false,
  ) {
    this.existed = db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'broker_retained'`).get() !== undefined;
    db.exec(SCHEMA);
    this.st = {
      putRetained: db.prepare('INSERT OR REPLACE INTO broker_retained (topic, packet) VALUES (?, ?)'),
      delRetained: db.prepare('DELETE FROM broker_retained WHERE topic = ?'),
      putSub: db.prepare('INSERT OR REPLACE INTO broker_subscriptions (client_id, topic, sub) VALUES (?, ?, ?)'),
      delSub: db.prepare('DELETE FROM broker_subscriptions WHERE client_id = ? AND topic = ?'),
      delSubs: db.prepare('DELETE FROM broker_subscriptions WHERE client_id = ?'),
      putMessage: db.prepare('INSERT INTO broker_messages (id, packet) VALUES (?, ?)'),
      delMessage: db.prepare('DELETE FROM broker_messages WHERE id = ?'),
      putOutgoing: db.prepare('INSERT INTO broker_outgoing (seq, client_id, message, message_id) VALUES (?, ?, ?, NULL)'),
      setMessageId: db.prepare('UPDATE broker_outgoing SET message_id = ? WHERE seq = ?'),
      toPubrel: db.prepare('UPDATE broker_outgoing SET message = NULL, message_id = ? WHERE seq = ?'),
      delOutgoing: db.prepare('DELETE FROM broker_outgoing WHERE seq = ?'),
      putIncoming: db.prepare('INSERT OR REPLACE INTO broker_incoming (client_id, message_id, packet) VALUES (?, ?, ?)'),
      delIncoming: db.prepare('DELETE FROM broker_incoming WHERE client_id = ? AND message_id = ?'),
      delIncomingAll: db.prepare('DELETE FROM broker_incoming WHERE client_id = ?'),
      putWill: db.prepare('INSERT OR REPLACE INTO broker_wills (client_id, packet) VALUES (?, ?)'),
      delWill: db.prepare('DELETE FROM broker_wills WHERE client_id = ?'),
    };
  }

  /** Everything kept, read once at start; messages no queue references any more are dropped. */
  load(): BrokerSnapshot {
    this.db.exec('DELETE FROM broker_messages WHERE id NOT IN (SELECT message FROM broker_outgoing WHERE message IS NOT NULL)');
    const rows = <T>(sql: string) => this.db.prepare(sql).all() as T[];
    const subscriptions = new Map<string, Record<string, unknown>[]>();
    for (const r of rows<{ client_id: string; sub: Buffer }>('SELECT client_id, sub FROM broker_subscriptions')) {
      const list = subscriptions.get(r.client_id) ?? [];
      list.push(decodeBlob(r.sub));
      subscriptions.set(r.client_id, list);
    }
    return {
      retained: rows<{ packet: Buffer }>('SELECT packet FROM broker_retained').map((r) => decodeBlob(r.packet)),
      subscriptions: [...subscriptions].map(([clientId, subs]) => ({ clientId, subs })),
      messages: new Map(rows<{ id: number; packet: Buffer }>('SELECT id, packet FROM broker_messages').map((r) => [r.id, decodeBlob<StoredPacket>(r.packet)])),
      outgoing: rows<{ seq: number; client_id: string; message: number | null; message_id: number | null }>('SELECT seq, client_id, message, message_id FROM broker_outgoing ORDER BY seq').map(
        (r) => ({ seq: r.seq, clientId: r.client_id, message: r.message, messageId: r.message_id }),
      ),
      incoming: rows<{ client_id: string; packet: Buffer }>('SELECT client_id, packet FROM broker_incoming').map((r) => ({ clientId: r.client_id, packet: decodeBlob(r.packet) })),
      wills: rows<{ client_id: string; packet: Buffer }>('SELECT client_id, packet FROM broker_wills').map((r) => ({ clientId: r.client_id, packet: decodeBlob(r.packet) })),
    };
  }

  /** The highest row ids in use, so new rows continue after them. */
  maxIds(): { message: number; seq: number } {
    const max = (sql: string) => (this.db.prepare(sql).get() as { m: number | null }).m ?? 0;
    return { message: max('SELECT max(id) AS m FROM broker_messages'), seq: max('SELECT max(seq) AS m FROM broker_outgoing') };
  }

  /** Stores (or, without a packet, clears) the retained message of `topic`. */
  storeRetained(topic: string, packet: StoredPacket | undefined): Promise<void> {
    // Within one batch only the last message of a topic is written (pushes to one branch).
    const pending = this.pendingRetained.get(topic);
    if (pending) {
      pending.packet = packet;
      return pending.written;
    }
    const entry = { packet, written: Promise.resolve() };
    this.pendingRetained.set(topic, entry);
    entry.written = this.write(() => {
      this.pendingRetained.delete(topic);
      if (entry.packet) this.st.putRetained.run(topic, encode(entry.packet));
      else this.st.delRetained.run(topic);
    });
    return entry.written;
  }

  addSubscriptions(clientId: string, subs: Record<string, unknown>[]): Promise<void> {
    return this.write(() => {
      for (const sub of subs) this.st.putSub.run(clientId, sub.topic, encode(sub));
    });
  }

  removeSubscriptions(clientId: string, topics: string[] | 'all'): Promise<void> {
    return this.write(() => {
      if (topics === 'all') this.st.delSubs.run(clientId);
      else for (const topic of topics) this.st.delSub.run(clientId, topic);
    });
  }

  /**
   * A message queued for some clients (`entries`, each referencing `message`). With nothing to
   * write it still waits for the writes asked for before it: publishes settle in the order they
   * got here.
   */
  enqueue(message: { id: number; packet: StoredPacket } | undefined, entries: { seq: number; clientId: string; message: number }[]): Promise<void> | undefined {
    if (!message && entries.length === 0 && this.pending === 0) return undefined;
    return this.write(() => {
      if (message) this.st.putMessage.run(message.id, encode(message.packet));
      for (const e of entries) this.st.putOutgoing.run(e.seq, e.clientId, e.message);
    });
  }

  setMessageId(seq: number, messageId: number): Promise<void> {
    return this.write(() => void this.st.setMessageId.run(messageId, seq));
  }

  /** The entry is now a PUBREL awaiting PUBCOMP; `orphan` is its message if no queue needs it. */
  toPubrel(seq: number, messageId: number, orphan: number | undefined): Promise<void> {
    return this.write(() => {
      this.st.toPubrel.run(messageId, seq);
      if (orphan !== undefined) this.st.delMessage.run(orphan);
    });
  }

  dequeue(seq: number, orphan: number | undefined): Promise<void> {
    return this.write(() => {
      this.st.delOutgoing.run(seq);
      if (orphan !== undefined) this.st.delMessage.run(orphan);
    });
  }

  storeIncoming(clientId: string, messageId: number, packet: StoredPacket): Promise<void> {
    return this.write(() => void this.st.putIncoming.run(clientId, messageId, encode(packet)));
  }

  deleteIncoming(clientId: string, messageId: number | 'all'): Promise<void> {
    return this.write(() => void (messageId === 'all' ? this.st.delIncomingAll.run(clientId) : this.st.delIncoming.run(clientId, messageId)));
  }

  putWill(clientId: string, packet: StoredPacket | undefined): Promise<void> {
    return this.write(() => void (packet ? this.st.putWill.run(clientId, encode(packet)) : this.st.delWill.run(clientId)));
  }

  private write(step: () => void): Promise<void> {
    this.pending++;
    return this.batch.run(step).finally(() => this.pending--);
  }

  close(): void {
    this.batch.flush();
    if (this.owned) this.db.close();
  }

  /** A store on `stateDir`'s state database, with a connection of its own. */
  static open(stateDir: string): BrokerStore {
    const db = openStateDb(stateDir);
    try {
      return new BrokerStore(db, new TickBatch(db), true);
    } catch (err) {
      db.close();
      throw new Error(`${stateDbFile(stateDir)}: ${(err as Error).message}`, { cause: err });
    }
  }
}

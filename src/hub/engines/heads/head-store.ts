import type { StateDb } from '../../state-db.js';
import type { TickBatch } from '../../tick-batch.js';

/** Own heads awaiting their echo; past this many refs the oldest expectation is forgotten. */
const MAX_EXPECTED = 10_000;
/** Own publishes of one ref awaiting their echo; an older one beyond this is decoded like any head. */
const MAX_PENDING_PER_TOPIC = 256;

/**
 * The retained head of every ref, kept in the hub's state so they can be put back on an embedded
 * broker after a restart. Writes go through the tick batch (one commit per event-loop turn).
 *
 * The hub subscribes to all heads, so each head it publishes itself comes back to it. The hub
 * built that payload with the shared schema and records it when the broker acknowledged it;
 * `expectOwn` lets the heads engine recognise the echo byte for byte and skip decoding and
 * storing it a second time.
 */
export class HeadStore {
  /** Per topic, the payloads published and not yet echoed: concurrent pushes to one ref overlap. */
  private readonly expected = new Map<string, Buffer[]>();
  private readonly upsert;
  private readonly remove;
  private readonly all;

  constructor(
    db: StateDb,
    private readonly batch: TickBatch,
  ) {
    db.exec('CREATE TABLE IF NOT EXISTS heads (topic TEXT PRIMARY KEY, payload TEXT NOT NULL)');
    this.upsert = db.prepare('INSERT INTO heads (topic, payload) VALUES (?, ?) ON CONFLICT(topic) DO UPDATE SET payload = excluded.payload');
    this.remove = db.prepare('DELETE FROM heads WHERE topic = ?');
    this.all = db.prepare<[], { topic: string; payload: string }>('SELECT topic, payload FROM heads');
  }

  /** Stores a ref's head; an empty payload (a deleted ref) removes it. */
  put(topic: string, payload: Buffer): Promise<void> {
    const text = payload.toString('utf8');
    return this.batch.run(() => (text === '' ? this.remove.run(topic) : this.upsert.run(topic, text)));
  }

  /** Every stored head, after any queued write. */
  list(): { topic: string; payload: string }[] {
    this.batch.flush();
    return this.all.all();
  }

  /** The hub is about to publish this head itself: its echo needs no second look. */
  expectOwn(topic: string, payload: Buffer): void {
    const pending = this.expected.get(topic);
    if (pending) {
      if (pending.length >= MAX_PENDING_PER_TOPIC) pending.shift();
      pending.push(payload);
      return;
    }
    if (this.expected.size >= MAX_EXPECTED) this.expected.delete(this.expected.keys().next().value!);
    this.expected.set(topic, [payload]);
  }

  /** True (once) when `payload` is the echo of one of the hub's own publishes on `topic`. */
  takeOwnEcho(topic: string, payload: Buffer): boolean {
    const pending = this.expected.get(topic);
    const i = pending ? pending.findIndex((p) => p.equals(payload)) : -1;
    if (i === -1) return false;
    pending!.splice(i, 1);
    if (pending!.length === 0) this.expected.delete(topic);
    return true;
  }
}

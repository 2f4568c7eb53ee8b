import type { StateDb } from '../../state-db.js';
import type { TickBatch } from '../../tick-batch.js';
import { parseEnvelope } from '../../../shared/signing/envelope.js';

/** Own heads awaiting their echo; past this many refs the oldest expectation is forgotten. */
const MAX_EXPECTED = 10_000;
/** Own publishes of one ref awaiting their echo; an older one beyond this is decoded like any head. */
const MAX_PENDING_PER_TOPIC = 256;
/** Refs kept at most: the one written longest ago goes first. Checked every PRUNE_EVERY writes. */
export const MAX_HEADS = 100_000;
const PRUNE_EVERY = 1000;

/**
 * The retained head of every ref the hub published itself (the signed bytes, as they went out),
 * kept in its state so they can be put back on an embedded broker after a restart, and put back
 * over a head anyone else published. Writes go through the tick batch (one commit per event-loop
 * turn).
 *
 * The hub subscribes to all heads, so each head it publishes comes back to it; `expectOwn`
 * lets the heads engine recognise that echo byte for byte.
 */
export class HeadStore {
  /** Per topic, the payloads published and not yet echoed: concurrent pushes to one ref overlap. */
  private readonly expected = new Map<string, Buffer[]>();
  /** Per topic, the newest own head handed to the broker and not yet stored. */
  private readonly inFlight = new Map<string, Buffer>();
  private writes = 0;
  private readonly upsert;
  private readonly remove;
  private readonly one;
  private readonly all;
  private readonly prune;

  constructor(
    db: StateDb,
    private readonly batch: TickBatch,
    private readonly max = MAX_HEADS,
  ) {
    db.exec('CREATE TABLE IF NOT EXISTS heads (topic TEXT PRIMARY KEY, payload TEXT NOT NULL)');
    // REPLACE gives a rewritten ref a new rowid, so rowid order is write order.
    this.upsert = db.prepare('INSERT OR REPLACE INTO heads (topic, payload) VALUES (?, ?)');
    this.remove = db.prepare('DELETE FROM heads WHERE topic = ?');
    this.one = db.prepare<[string], { payload: string }>('SELECT payload FROM heads WHERE topic = ?');
    this.all = db.prepare<[], { topic: string; payload: string }>('SELECT topic, payload FROM heads');
    this.prune = db.prepare('DELETE FROM heads WHERE rowid IN (SELECT rowid FROM heads ORDER BY rowid DESC LIMIT -1 OFFSET ?)');
    this.prune.run(this.max);
  }

  /** Stores a ref's head as published; an empty payload (a deleted ref) removes it. */
  put(topic: string, payload: Buffer): Promise<void> {
    if (this.inFlight.get(topic)?.equals(payload)) this.inFlight.delete(topic);
    const text = payload.toString('utf8');
    const pruneNow = ++this.writes % PRUNE_EVERY === 0;
    return this.batch.run(() => {
      if (text === '') this.remove.run(topic);
      else this.upsert.run(topic, text);
      if (pruneNow) this.prune.run(this.max);
    });
  }

  /** Every stored head as published (`wire`, signed) and the push message inside (`payload`), after any queued write. */
  list(): { topic: string; payload: string; wire: string }[] {
    this.batch.flush();
    return this.all.all().map((h) => ({ topic: h.topic, wire: h.payload, payload: parseEnvelope(Buffer.from(h.payload))?.payload ?? h.payload }));
  }

  /** The newest head the hub published on `topic` (empty when none): what goes back over anyone else's. */
  newestOwn(topic: string): Buffer {
    const flying = this.inFlight.get(topic);
    if (flying) return flying;
    this.batch.flush();
    const row = this.one.get(topic);
    return row ? Buffer.from(row.payload) : Buffer.alloc(0);
  }

  /** The hub is about to publish this head itself: its echo needs no second look. */
  expectOwn(topic: string, payload: Buffer): void {
    this.inFlight.delete(topic);
    if (this.inFlight.size >= MAX_EXPECTED) this.inFlight.delete(this.inFlight.keys().next().value!);
    this.inFlight.set(topic, payload);
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

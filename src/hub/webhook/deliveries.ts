import type { StateDb } from '../state-db.js';
import type { TickBatch } from '../tick-batch.js';
import { AckTimeout, withinMs } from '../push-publisher.js';

/**
 * What the hub can truthfully say about one delivery (see DeliveryLog):
 * - `published`: the broker acknowledged it (200); `duplicate` when an earlier copy did that.
 * - `publishing`: handed to the MQTT client, no PUBACK yet (202); the client holds it and sends
 *   it when the stalled broker reads its connection again. Never published a second time: if
 *   that connection breaks first, the push is withdrawn and stays in doubt.
 * - `in-doubt`: handed to the broker and never acknowledged: an earlier hub process stopped before
 *   the PUBACK, or the publish failed once handed over (202). It may or may not have reached the
 *   broker; at most once wins, so it is never published again.
 * - `not-published`: nothing was and nothing will be published for it (503): redeliver it.
 */
export type DeliveryOutcome =
  | { state: 'published' | 'publishing' | 'in-doubt'; duplicate: boolean; topic: string }
  | { state: 'not-published'; reason: string; busy?: boolean };

export type AcceptOptions = {
  /** Hands the push to the broker; resolves on its PUBACK. Called at most once per delivery id. */
  publish(): Promise<void>;
  /** False while the MQTT client is disconnected: mqtt.js would queue the publish and send it later. */
  canPublish(): boolean;
  /** How long the answer waits for the PUBACK before saying `publishing`. */
  timeoutMs: number;
  /** Deliveries being recorded or awaiting their PUBACK beyond which a new one is refused. */
  maxPending: number;
  /**
   * Called in the same turn as the delivery's row is written, so what it writes in the tick batch
   * (the audit entry) shares the row's commit; only for a delivery taken now, not for a copy.
   */
  recording?: () => void;
};

/** A delivery this process is working on: recording, awaiting its PUBACK, or acknowledged. */
type Live =
  | { state: 'recording'; first: Promise<DeliveryOutcome> }
  | { state: 'publishing' | 'published'; topic: string }
  /** Answered 503, but its record could not be removed: this process may still publish it. */
  | { state: 'failed' };

type Row = { topic: string; state: 'publishing' | 'published' };

const MARK_RETRY_MS = 1000;
const NOT_CONNECTED: DeliveryOutcome = { state: 'not-published', reason: 'the MQTT broker is not connected' };

/**
 * The delivery ids the hub has seen, so each reaches the broker at most once and every 200 is
 * true. A delivery is recorded as `publishing` (committed) before it is handed to the broker; if
 * that record cannot be written (a full disk), nothing is published and the answer is 503. Once
 * the broker acknowledged it, the record becomes `published`, in the background: the
 * `publishing` record already prevents a second publish. Records go through the tick batch, so
 * under load all deliveries of one event-loop turn share one commit.
 *
 * A kill -9 at any point leaves either no record (nothing was published: a redelivery goes
 * through), `publishing` (in doubt: a redelivery gets 202 and publishes nothing), or `published`.
 */
export class DeliveryLog {
  private readonly live = new Map<string, Live>();
  private readonly awaitingAck = new Set<string>();
  private readonly find;
  private readonly record;
  private readonly remove;
  private readonly markPublished;
  private readonly prune;
  private closed = false;
  private readonly retries = new Set<NodeJS.Timeout>();

  constructor(
    db: StateDb,
    private readonly batch: TickBatch,
    private readonly onError: (err: unknown, what: string) => void = () => {},
    private readonly retainDays = 30,
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS deliveries (
      id TEXT PRIMARY KEY, topic TEXT NOT NULL, received_at INTEGER NOT NULL)`);
    // Databases from before the `publishing` state recorded a delivery only once acknowledged.
    const columns = db.prepare<[], { name: string }>('SELECT name FROM pragma_table_info(\'deliveries\')').all();
    if (!columns.some((c) => c.name === 'state')) db.exec(`ALTER TABLE deliveries ADD COLUMN state TEXT NOT NULL DEFAULT 'published'`);
    this.find = db.prepare<[string], Row>('SELECT topic, state FROM deliveries WHERE id = ?');
    this.record = db.prepare(`INSERT INTO deliveries (id, topic, received_at, state) VALUES (?, ?, ?, 'publishing')
      ON CONFLICT(id) DO UPDATE SET topic = excluded.topic, received_at = excluded.received_at, state = 'publishing'`);
    this.remove = db.prepare('DELETE FROM deliveries WHERE id = ?');
    this.markPublished = db.prepare(`UPDATE deliveries SET state = 'published' WHERE id = ?`);
    this.prune = db.prepare('DELETE FROM deliveries WHERE received_at < ?');
  }

  /** Pushes answered 202 `publishing` whose PUBACK has not come yet: the broker is stalled. */
  get unacknowledged(): number {
    let held = 0;
    for (const live of this.live.values()) if (live.state === 'publishing') held++;
    return held;
  }

  /** Deliveries being recorded or handed to the broker and not yet acknowledged. */
  get pending(): number {
    return this.awaitingAck.size;
  }

  /** Publishes the delivery at most once, and says what became of it. */
  accept(id: string, topic: string, opts: AcceptOptions): Promise<DeliveryOutcome> {
    const live = this.live.get(id);
    if (live?.state === 'recording') return live.first.then(asCopy);
    if (live?.state === 'publishing' || live?.state === 'published') return Promise.resolve({ state: live.state, duplicate: true, topic: live.topic });
    if (live?.state !== 'failed') {
      const row = this.find.get(id);
      if (row?.state === 'published') return Promise.resolve({ state: 'published', duplicate: true, topic: row.topic });
      // Not live here: an earlier process recorded it and stopped before (or without) the PUBACK.
      if (row?.state === 'publishing') return Promise.resolve({ state: 'in-doubt', duplicate: true, topic: row.topic });
    }
    if (this.closed || !opts.canPublish()) return Promise.resolve(NOT_CONNECTED);
    if (this.awaitingAck.size >= opts.maxPending) {
      return Promise.resolve({ state: 'not-published', busy: true, reason: `${this.awaitingAck.size} pushes are awaiting the broker (webhook.maxInFlight ${opts.maxPending})` });
    }
    this.awaitingAck.add(id);
    const first = this.publishOnce(id, topic, opts);
    this.live.set(id, { state: 'recording', first });
    return first;
  }

  private async publishOnce(id: string, topic: string, opts: AcceptOptions): Promise<DeliveryOutcome> {
    try {
      const recorded = this.batch.run(() => this.record.run(id, topic, Date.now()));
      opts.recording?.();
      await recorded;
    } catch (err) {
      this.settle(id, undefined);
      return { state: 'not-published', reason: `the delivery could not be recorded (${(err as Error).message})` };
    }
    // Checked again once recorded: the connection may have dropped while the batch committed.
    if (this.closed || !opts.canPublish()) {
      await this.forget(id);
      return NOT_CONNECTED;
    }
    const acked = opts.publish();
    try {
      await withinMs(acked, opts.timeoutMs);
    } catch (err) {
      if (!(err instanceof AckTimeout)) {
        this.giveUp(id, err);
        return { state: 'in-doubt', duplicate: false, topic };
      }
      this.live.set(id, { state: 'publishing', topic });
      acked.then(
        () => this.confirm(id, topic),
        (late: unknown) => this.giveUp(id, late),
      );
      return { state: 'publishing', duplicate: false, topic };
    }
    this.confirm(id, topic);
    return { state: 'published', duplicate: false, topic };
  }

  /** Acknowledged: copies get 200 duplicate from memory until the record says so on disk too. */
  private confirm(id: string, topic: string): void {
    this.awaitingAck.delete(id);
    this.live.set(id, { state: 'published', topic });
    const mark = (): void => {
      this.batch.run(() => this.markPublished.run(id)).then(
        () => this.settle(id, undefined),
        (err: unknown) => {
          // A full disk after publishing: the `publishing` record still prevents a second publish.
          this.onError(err, `delivery ${id} was published but could not be marked so; retrying`);
          if (this.closed) return;
          const retry = setTimeout(() => {
            this.retries.delete(retry);
            mark();
          }, MARK_RETRY_MS).unref();
          this.retries.add(retry);
        },
      );
    };
    mark();
  }

  /**
   * The publish failed after it was handed over (the connection broke, the client withdrew it):
   * it may have reached the broker, so the record stays and a redelivery is in doubt.
   */
  private giveUp(id: string, err: unknown): void {
    this.settle(id, undefined);
    this.onError(err, `delivery ${id} stays in doubt: it was handed to the broker and never acknowledged`);
  }

  /** Nothing was published: drop the record so a redelivery goes through. */
  private async forget(id: string): Promise<void> {
    try {
      await this.batch.run(() => this.remove.run(id));
      this.settle(id, undefined);
    } catch (err) {
      this.onError(err, `delivery ${id} was not published but its record could not be removed`);
      this.settle(id, { state: 'failed' });
    }
  }

  private settle(id: string, live: Live | undefined): void {
    this.awaitingAck.delete(id);
    if (live) this.live.set(id, live);
    else this.live.delete(id);
  }

  /** No new publish from here on (the hub is stopping); records already queued still commit. */
  close(): void {
    this.closed = true;
    // A mark still failing stays `publishing` on disk: after the restart that delivery is in doubt.
    for (const retry of this.retries) clearTimeout(retry);
    this.retries.clear();
  }

  /** Drops records older than GitHub would redeliver; run at start and daily. */
  pruneOld(now = Date.now()): number {
    return this.prune.run(now - this.retainDays * 86_400_000).changes;
  }
}

/** A copy that arrived while the first was being recorded shares its fate, as a duplicate. */
function asCopy(first: DeliveryOutcome): DeliveryOutcome {
  return first.state === 'not-published' ? first : { ...first, duplicate: true };
}

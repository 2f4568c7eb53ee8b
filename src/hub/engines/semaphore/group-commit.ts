import type { StateDb } from '../../state-db.js';
import type { TickBatch } from '../../tick-batch.js';

/** `keyed`: where each message sent with a key sits in `sends`, so it can be withdrawn. */
type Turn = { writes: (() => void)[]; sends: (() => void)[]; keyed: Map<string, number> };

/**
 * The semaphore's writes of one event-loop turn in the hub's per-turn transaction (TickBatch),
 * and the messages that tell clients about them sent only once it has committed, in the order
 * they were made. Without a batch (unit tests of other engines) each write commits and each
 * message goes out at once, as they are made.
 *
 * A `go` is a promise: it must never be on the wire before the grant that makes it true is in
 * the database, or a hub killed -9 would restart without that grant and hand the slot to a second
 * holder. Committing each change on its own kept that promise at one commit per change, the
 * largest cost per grant; now the messages of a turn (all the packets of one socket read) share
 * one commit, and their answers wait for it. A commit (WAL, synchronous=NORMAL) is in the file
 * when it returns, so it survives a kill -9 of the hub; a power cut may lose the last ones, as
 * before.
 *
 * A kill between a message's handling and its turn's commit loses that message's effect, never a
 * promise made: nothing about it was sent. A register without an answer is sent again by a client
 * that resyncs; a finished whose slot the restarted hub still counts keeps the slot until the
 * job's timeout, as a finished sent while the hub was down always did. The slot is never given twice.
 */
export class GroupCommit {
  private readonly atomically: (writes: (() => void)[]) => void;
  /** The turn taking writes, whose commit is pending. */
  private open: Turn | undefined;
  /** The turn whose commit has run but whose messages are not sent yet: later ones queue behind them. */
  private unsent: Turn | undefined;

  constructor(
    db: StateDb,
    private readonly batch: TickBatch | undefined,
    /** A commit failed: the turn's messages are not sent (what they announce is not stored). */
    private readonly failed: (err: unknown, withheld: number) => void,
  ) {
    // All or nothing, also when the batch retries its writes one by one after another one failed.
    this.atomically = db.transaction((writes: (() => void)[]) => {
      for (const write of writes) write();
    });
  }

  /** Runs `write` in this turn's transaction. */
  write(write: () => void): void {
    if (!this.batch) return write();
    (this.open ?? this.begin(this.batch)).writes.push(write);
  }

  /**
   * Sends after the writes made so far have committed; at once when none is pending. A `key`
   * lets a later change of the same turn withdraw the message (see `withdraw`).
   */
  send(send: () => void, key?: string): void {
    const behind = this.open ?? this.unsent;
    if (!behind) return send();
    if (key !== undefined && behind === this.open) behind.keyed.set(key, behind.sends.length);
    behind.sends.push(send);
  }

  /**
   * Withdraws the message sent with `key` in the turn still taking writes: a later change in the
   * same commit made it moot. False when there is none (it was sent, or belongs to a committed turn).
   */
  withdraw(key: string): boolean {
    const at = this.open?.keyed.get(key);
    if (at === undefined) return false;
    this.open!.keyed.delete(key);
    this.open!.sends[at] = () => undefined;
    return true;
  }

  /** Whether writes wait for this turn's commit (a read of the tables they change would not see them yet). */
  get pending(): boolean {
    return this.open !== undefined;
  }

  /** Commits what is pending now (at stop, while the broker is still there); its messages follow in this tick's microtasks. */
  flush(): void {
    this.batch?.flush();
  }

  private begin(batch: TickBatch): Turn {
    const turn: Turn = { writes: [], sends: [], keyed: new Map() };
    this.open = turn;
    const settled = () => {
      if (this.unsent === turn) this.unsent = undefined;
    };
    batch
      .run(() => {
        // Writes made from here on belong to the next commit.
        if (this.open === turn) {
          this.open = undefined;
          this.unsent = turn;
        }
        this.atomically(turn.writes);
      })
      .then(
        () => {
          try {
            for (const send of turn.sends) send();
          } finally {
            settled();
          }
        },
        (err: unknown) => {
          settled();
          this.failed(err, turn.sends.length);
        },
      );
    return turn;
  }
}

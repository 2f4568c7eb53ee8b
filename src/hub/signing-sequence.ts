import { SequenceCounter } from '../shared/signing/sequence.js';
import type { StateDb } from './state-db.js';

/** Sequences reserved per state write: an hour of µs, so the write is rare. */
const BLOCK = 3_600_000_000;

/**
 * The signing sequence, kept above everything signed before a restart even if the clock was set
 * back meanwhile (agents would refuse every new message as a replay until it caught up): a block
 * is reserved in the state database before its first sequence is used, and a restart starts
 * above the last reservation.
 */
export function persistedSequence(db: StateDb): (nowMs: number) => number {
  db.exec('CREATE TABLE IF NOT EXISTS signing_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), reserved INTEGER NOT NULL)');
  let reserved = db.prepare<[], { reserved: number }>('SELECT reserved FROM signing_sequence WHERE id = 1').get()?.reserved ?? 0;
  const save = db.prepare('INSERT INTO signing_sequence (id, reserved) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET reserved = excluded.reserved');
  const counter = new SequenceCounter(reserved);
  return (nowMs) => {
    const seq = counter.next(nowMs);
    if (seq >= reserved) {
      save.run(seq + BLOCK);
      reserved = seq + BLOCK;
    }
    return seq;
  };
}

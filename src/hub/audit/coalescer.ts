import type { AuditInput } from './audit-entry.js';

/** An entry as the log holds it until the window of its repeats closes: times in ms. */
export type LiveRow = Required<AuditInput> & { id: number; at: number; lastAt: number; count: number };

export type CoalescerOptions = {
  /** Identical entries this close to the first one are one entry with a count. */
  windowMs: number;
  /** New rejected entries per window beyond which refusals are counted in one entry per action. */
  floodRows: number;
  /** Entries whose repeats are still looked for, at most (oldest forgotten first). */
  maxLive: number;
};

export const COALESCE_DEFAULTS: CoalescerOptions = { windowMs: 60_000, floodRows: 200, maxLive: 10_000 };

/**
 * Turns repeats into counts, so a client failing logins (or sending bad signatures) in a loop
 * costs one row a minute, not one per attempt: an entry identical in every field but its time to
 * one less than `windowMs` older is that one counted again. A flood that varies its fields (a new
 * user name each time, many addresses) is caught by the second rule: past `floodRows` new
 * refusals in a window, each further one is counted in a single entry per action, with neither
 * name nor address.
 */
export class Coalescer {
  private readonly live = new Map<string, LiveRow>();
  private floodStart = Number.NEGATIVE_INFINITY;
  private floodCount = 0;

  constructor(
    private readonly opts: CoalescerOptions,
    private readonly newId: () => number,
  ) {}

  /** The row `input` becomes at `now`: an earlier one with its count raised, or a new one. */
  add(input: AuditInput, now: number): LiveRow {
    let entry = normalized(input);
    let key = keyOf(entry);
    const earlier = this.live.get(key);
    if (earlier && now - earlier.at < this.opts.windowMs) {
      earlier.count++;
      earlier.lastAt = Math.max(earlier.lastAt, now);
      return earlier;
    }
    if (entry.outcome === 'rejected' && this.isFlood(now)) {
      entry = { ...entry, who: null, identity: 'none', address: null, target: null, reason: `more than ${this.opts.floodRows} refusals in ${this.opts.windowMs / 1000} s: the rest are counted here, without names or addresses` };
      key = keyOf(entry);
      const overflow = this.live.get(key);
      if (overflow && now - overflow.at < this.opts.windowMs) {
        overflow.count++;
        overflow.lastAt = Math.max(overflow.lastAt, now);
        return overflow;
      }
    }
    const row: LiveRow = { ...entry, id: this.newId(), at: now, lastAt: now, count: 1 };
    this.live.delete(key);
    this.live.set(key, row);
    if (this.live.size > this.opts.maxLive) this.live.delete(this.live.keys().next().value!);
    return row;
  }

  /** Entries at or below `id` were removed from the table: their repeats start new entries. */
  forgetUpTo(id: number): void {
    // Rows are kept in the order their ids were given: the removed ones come first.
    for (const [key, row] of this.live) {
      if (row.id > id) break;
      this.live.delete(key);
    }
  }

  /** Whether this new refusal is past the window's allowance (and counts it). */
  private isFlood(now: number): boolean {
    if (now - this.floodStart >= this.opts.windowMs) {
      this.floodStart = now;
      this.floodCount = 0;
    }
    return ++this.floodCount > this.opts.floodRows;
  }
}

function normalized(input: AuditInput): Required<AuditInput> {
  return { ...input, address: input.address ?? null, target: input.target ?? null, reason: input.reason ?? null };
}

const keyOf = (e: Required<AuditInput>): string => JSON.stringify([e.kind, e.via, e.who, e.identity, e.address, e.action, e.target, e.outcome, e.reason]);

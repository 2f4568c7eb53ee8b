/**
 * The WAITFOR rules, fixing the seed's substring match and its stale retained statuses:
 *
 * 1. Exact: the status (trimmed) must equal the expected word, case-sensitively: STARTED_X is not
 *    STARTED, STOP is not STOPPED.
 * 2. Fresh: only a status published live during this run counts, and each one satisfies at most
 *    one WAITFOR of its node, so a second `WAITFOR n STOPPED` needs a second STOPPED. A retained
 *    copy delivered when the run subscribed was left by an earlier run and never counts…
 * 3. …except presence: `ALIVE` means "the node is connected", met while its latest status, retained
 *    or live, is anything but OFFLINE (the last will replaces it when the node dies); `OFFLINE` is
 *    met while the latest status is OFFLINE.
 * 4. Fail fast: a node whose latest status is OFFLINE, or that answered REFUSED, BUSY or FAILED
 *    since the last met WAITFOR, fails the wait at once instead of running into the timeout.
 */
export const PRESENT = 'ALIVE';
export const ABSENT = 'OFFLINE';
const REFUSALS = new Set(['REFUSED', 'BUSY', 'FAILED']);
const HISTORY_PER_NODE = 1000;

type Seen = { status: string; retained: boolean; seq: number };

export type WaitVerdict = { state: 'met' } | { state: 'waiting' } | { state: 'failed'; reason: string };

export class StatusBook {
  private seq = 0;
  private readonly history = new Map<string, Seen[]>();
  /** Per node, the sequence number of the status that met its last WAITFOR. */
  private readonly consumed = new Map<string, number>();

  /** `retained` is the MQTT retain flag as delivered: set only for copies sent on subscribing. */
  record(node: string, payload: string, retained: boolean): void {
    const seen = this.history.get(node) ?? [];
    seen.push({ status: payload.trim(), retained, seq: ++this.seq });
    if (seen.length > HISTORY_PER_NODE) seen.shift();
    this.history.set(node, seen);
  }

  latest(node: string): string | undefined {
    return this.history.get(node)?.at(-1)?.status;
  }

  /** Checks one WAITFOR; when it is met by a live status, that status is used up. */
  check(node: string, expected: string): WaitVerdict {
    const latest = this.latest(node);
    if (expected === PRESENT) return latest !== undefined && latest !== '' && latest !== ABSENT ? { state: 'met' } : { state: 'waiting' };
    if (expected === ABSENT) return latest === ABSENT ? { state: 'met' } : { state: 'waiting' };

    const after = this.consumed.get(node) ?? 0;
    const fresh = (this.history.get(node) ?? []).filter((s) => !s.retained && s.seq > after);
    const match = fresh.find((s) => s.status === expected);
    if (match) {
      this.consumed.set(node, match.seq);
      return { state: 'met' };
    }
    if (latest === ABSENT) return { state: 'failed', reason: `${node} is ${ABSENT}` };
    const refusal = fresh.find((s) => REFUSALS.has(s.status) && s.status !== expected);
    if (refusal) return { state: 'failed', reason: `${node} answered ${refusal.status}` };
    return { state: 'waiting' };
  }
}

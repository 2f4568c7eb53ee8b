import type { WebhookAnswer } from '../webhook/route.js';
import { pushedSha } from '../../shared/push-match.js';
import { paged, type Paged } from './paged.js';

/**
 * What became of one request on the webhook path: accepted (published, or held for the broker),
 * duplicate (a copy of a delivery already taken: nothing published again), rejected (with why:
 * bad signature, bad payload, the broker down), or ignored (a ping or an event other than push).
 */
export type DeliveryResult = 'accepted' | 'duplicate' | 'rejected' | 'ignored';
export const DELIVERY_RESULTS: readonly DeliveryResult[] = ['accepted', 'duplicate', 'rejected', 'ignored'];

export type DeliveryRecord = {
  at: string;
  /** The X-GitHub-Delivery GUID, when the request carried a well-formed one (verified only if the signature was). */
  delivery: string | null;
  event: string | null;
  result: DeliveryResult;
  /** The HTTP status the hub answered. */
  status: number;
  /** Why it was rejected (the error the sender got), or what became of an accepted push. */
  reason: string | null;
  /** For accepted and duplicate pushes: published, publishing (no PUBACK yet) or in-doubt. */
  state: 'published' | 'publishing' | 'in-doubt' | null;
  repo: string | null;
  ref: string | null;
  sha: string | null;
  pusher: string | null;
  address: string | null;
};

/** What one answer of the webhook path says about its delivery. */
export function deliveryRecord(answer: Omit<WebhookAnswer, 'result'>, at: Date): DeliveryRecord {
  const { push, outcome } = answer;
  const taken = outcome && outcome.state !== 'not-published' ? outcome : undefined;
  const result: DeliveryResult = answer.status >= 400 ? 'rejected' : taken ? (taken.duplicate ? 'duplicate' : 'accepted') : 'ignored';
  const reason = answer.error ?? (result === 'ignored' ? (answer.event === 'ping' ? 'ping' : `a ${answer.event ?? 'non-push'} event, not a push`) : null);
  return {
    at: at.toISOString(),
    delivery: answer.delivery ?? null,
    event: answer.event ?? null,
    result,
    status: answer.status,
    reason,
    state: taken?.state ?? null,
    repo: push?.repo ?? null,
    ref: push?.ref ?? null,
    sha: push ? pushedSha(push) : null,
    pusher: push?.pusher.name ?? null,
    address: answer.address ?? null,
  };
}

/** The newest webhook deliveries since the hub started, `max` at most (the oldest goes first). */
export class DeliveryView {
  private readonly ring: DeliveryRecord[] = [];
  private next = 0;

  constructor(private readonly max: number) {}

  add(record: DeliveryRecord): void {
    if (this.ring.length < this.max) this.ring.push(record);
    else this.ring[this.next] = record;
    this.next = (this.next + 1) % this.max;
  }

  /** Newest first, optionally of one result. */
  list(page: { offset: number; limit: number }, result?: DeliveryResult): Paged<DeliveryRecord> {
    const n = this.ring.length;
    const newestFirst: DeliveryRecord[] = [];
    for (let i = 1; i <= n; i++) {
      const r = this.ring[(this.next - i + n) % n]!;
      if (result === undefined || r.result === result) newestFirst.push(r);
    }
    return paged(newestFirst, page);
  }
}

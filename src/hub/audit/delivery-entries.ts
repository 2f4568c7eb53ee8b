import type { PushMessage } from '../../shared/messages.js';
import type { DeliveryOutcome } from '../webhook/deliveries.js';
import type { AuditInput } from './audit-entry.js';

/**
 * A refused webhook request. Nobody is named: before the signature verified, nothing in it is
 * GitHub's word. The delivery id is kept only once the signature did (it is then GitHub's).
 */
export function refusedDelivery(address: string | null, status: number, error: string, delivery?: string): AuditInput {
  return { kind: 'delivery', via: 'webhook', who: null, identity: 'none', address, action: 'delivery', target: delivery ?? null, outcome: status >= 500 ? 'failed' : 'rejected', reason: `${status}: ${error}` };
}

/** A verified delivery: an event the hub ignores, or a push with what became of it. */
export function deliveryEntry(d: { address: string | null; delivery: string; event: string; push?: PushMessage; outcome?: DeliveryOutcome }): AuditInput {
  const base = { kind: 'delivery', via: 'webhook', address: d.address, action: 'delivery', target: d.delivery } as const;
  if (!d.push || !d.outcome) return { ...base, who: null, identity: 'none', outcome: 'accepted', reason: d.event === 'ping' ? 'ping' : `${d.event} event: ignored` };
  const who = { who: d.push.pusher.name, identity: 'github' } as const;
  const what = `${d.push.repo} ${d.push.ref} ${d.push.after.slice(0, 12)}`;
  const o = d.outcome;
  if (o.state === 'not-published') return { ...base, ...who, outcome: 'failed', reason: `${what}: not published (${o.reason})` };
  return { ...base, ...who, outcome: o.duplicate ? 'duplicate' : 'accepted', reason: `${what}: ${o.state}` };
}

import type { WebhookAnswer } from '../webhook/route.js';
import type { AuditInput } from './audit-entry.js';

/**
 * The audit entry of one answer on the webhook path. Before the signature verified nothing in the
 * request is GitHub's word: such a refusal names neither pusher nor delivery. A verified push is
 * named by its pusher, with what became of it; a push taken now (not answered yet) is written
 * with its delivery row, before it is published, so an accepted push costs no commit of its own
 * before its answer (a publish that then fails adds a `failed` entry with the 503).
 */
export function deliveryEntry(a: WebhookAnswer): AuditInput {
  const base = { kind: 'delivery', via: 'webhook', address: a.address ?? null, action: 'delivery', target: a.verified ? (a.delivery ?? null) : null } as const;
  const o = a.outcome;
  if (!a.push || (!o && a.status >= 300)) {
    const failed = a.status >= 500 ? 'failed' : 'rejected';
    const reason = a.status >= 300 ? `${a.status}: ${a.error ?? 'refused'}` : a.event === 'ping' ? 'ping' : `${a.event} event: ignored`;
    return { ...base, who: null, identity: 'none', outcome: a.status >= 300 ? failed : 'accepted', reason };
  }
  const who = { who: a.push.pusher.name, identity: 'github' } as const;
  const what = `${a.push.repo} ${a.push.ref} ${a.push.after.slice(0, 12)}`;
  if (!o) return { ...base, ...who, outcome: 'accepted', reason: `${what}: recorded for publishing` };
  if (o.state === 'not-published') return { ...base, ...who, outcome: 'failed', reason: `${what}: not published (${o.reason})` };
  return { ...base, ...who, outcome: o.duplicate ? 'duplicate' : 'accepted', reason: `${what}: ${o.state}` };
}

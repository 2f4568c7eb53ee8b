import type { PushMessage } from '../../shared/messages.js';
import type { WebhookAnswer } from '../webhook/route.js';
import type { AuditInput } from './audit-entry.js';

/**
 * The audit entry of one answer on the webhook path. Before the signature verified nothing in the
 * request is GitHub's word: such a refusal names neither pusher nor delivery. A verified push is
 * named by its pusher, with what became of it.
 */
export function deliveryEntry(a: WebhookAnswer): AuditInput {
  if (a.push && !a.outcome) return takenPush(a, a.push);
  const base = { kind: 'delivery', via: 'webhook', address: a.address ?? null, action: 'delivery', target: a.verified ? (a.delivery ?? null) : null } as const;
  const failed = a.status >= 500 ? 'failed' : 'rejected';
  if (!a.push || !a.outcome) {
    const reason = a.status >= 300 ? `${a.status}: ${a.error ?? 'refused'}` : a.event === 'ping' ? 'ping' : `${a.event} event: ignored`;
    return { ...base, who: null, identity: 'none', outcome: a.status >= 300 ? failed : 'accepted', reason };
  }
  const { who, what } = pushOf(a.push);
  const o = a.outcome;
  if (o.state === 'not-published') return { ...base, ...who, outcome: 'failed', reason: `${what}: not published (${o.reason})` };
  return { ...base, ...who, outcome: o.duplicate ? 'duplicate' : 'accepted', reason: `${what}: ${o.state}` };
}

const pushOf = (push: PushMessage) => ({ who: { who: push.pusher.name, identity: 'github' } as const, what: `${push.repo} ${push.ref} ${push.after.slice(0, 12)}` });

/**
 * A verified push the hub takes now, written with its delivery row, before it is published (so
 * an accepted push costs no commit of its own before its answer). If the publish then fails, the
 * 503 adds a `failed` entry.
 */
function takenPush(a: WebhookAnswer, push: PushMessage): AuditInput {
  const { who, what } = pushOf(push);
  return { kind: 'delivery', via: 'webhook', address: a.address ?? null, action: 'delivery', target: a.delivery ?? null, ...who, outcome: 'accepted', reason: `${what}: recorded for publishing` };
}

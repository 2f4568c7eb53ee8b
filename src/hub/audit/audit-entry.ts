import { z } from 'zod';

/**
 * How the hub knows who did something:
 * - `token`: an API token (users-file account) the API checked;
 * - `mqtt-account`: the broker account that published the request, checked by the embedded broker;
 * - `claimed`: only what the request itself says (its `by`): with an external broker the hub is a
 *   subscriber and never learns who published a message;
 * - `github`: the pusher named in a webhook payload whose signature verified;
 * - `none`: nobody could be named (a refused request without credentials, a bad signature).
 */
export const Identity = z.enum(['token', 'mqtt-account', 'claimed', 'github', 'none']);
export type Identity = z.infer<typeof Identity>;

/** accepted: done or taken on; duplicate: a delivery seen before; rejected: refused (auth, input, state); failed: could not be carried out. */
export const Outcome = z.enum(['accepted', 'duplicate', 'rejected', 'failed']);
export type Outcome = z.infer<typeof Outcome>;

export const AuditKind = z.enum(['delivery', 'action', 'login']);
export type AuditKind = z.infer<typeof AuditKind>;

export const AuditVia = z.enum(['webhook', 'api', 'mqtt']);
export type AuditVia = z.infer<typeof AuditVia>;

/** What a recording point hands the audit log. Strings from the network are cut to a bounded length there. */
export type AuditInput = {
  kind: AuditKind;
  via: AuditVia;
  who: string | null;
  identity: Identity;
  address?: string | null;
  /** `delivery`, `login`, `rollout.pause`, `environment.freeze`, `agent.pin`, `job.trigger`, `service.add`, `POST /api/v1/…`. */
  action: string;
  /** What it was done to: a delivery id, rollout id, environment, `agent/app`, job, service. */
  target?: string | null;
  outcome: Outcome;
  /** Why, in words (the refusal's message, the delivery's state). */
  reason?: string | null;
};

/** One row of the audit log as the API and `pushfleet audit` show it. */
export const AuditEntry = z.object({
  id: z.number().int().positive(),
  /** When it happened (the first of `count` identical ones coalesced into this entry). */
  at: z.string(),
  /** When the last of them happened. */
  lastAt: z.string(),
  count: z.number().int().positive(),
  kind: AuditKind,
  via: AuditVia,
  who: z.string().nullable(),
  identity: Identity,
  address: z.string().nullable(),
  action: z.string(),
  target: z.string().nullable(),
  outcome: Outcome,
  reason: z.string().nullable(),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

const cut = (s: string | null | undefined, max: number): string | null => (s == null ? null : s.length > max ? `${s.slice(0, max - 1)}…` : s);

/** The input with every free-text field bounded, so a hostile client cannot make rows large. */
export function boundedInput(input: AuditInput): AuditInput {
  return {
    ...input,
    who: cut(input.who, 128),
    address: cut(input.address, 64),
    action: cut(input.action, 128)!,
    target: cut(input.target, 256),
    reason: cut(input.reason, 500),
  };
}

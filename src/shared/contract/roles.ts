/**
 * Who a broker client is. Every broker account has exactly one role; what each role may publish
 * and read is decided by the topic table (topic-table.ts), nowhere else.
 * - hub: the hub itself; everything.
 * - operator: a person or script steering the fleet: rollout control, pins, retries, semaphore
 *   settings, playbooks, notify, and reading every status.
 * - agent: one machine; its name is its agent id, and it publishes only under its own id.
 * - client: a coordinosaur semaphore user: registers jobs and ends only the jobs it registered.
 * - viewer: a person, dashboard or script that only looks: reads the hub's HTTP API, may do
 *   nothing on the broker (the table gives it no topic, and the embedded broker refuses its login).
 */
export const ROLES = ['hub', 'operator', 'agent', 'client', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export type Identity =
  | { readonly name: string; readonly role: Role }
  /** Only with `broker.allowAnonymous: true`: anything a non-hub role may do, for any name. */
  | { readonly anonymous: true };

export const ANONYMOUS: Identity = { anonymous: true };

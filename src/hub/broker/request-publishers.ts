import { createHash } from 'node:crypto';
import type { Identity } from '../../shared/contract/roles.js';
import { requestIdOf } from '../audit/operator-requests.js';

/** Who published one operator request, as the embedded broker's door saw it. */
export type RequestPublisher = { name: string | null; role: string; address: string };

const MAX_HELD = 10_000;

/**
 * The account behind each operator request (rollout control, job trigger, service change,
 * retry) the embedded broker let through, until the hub's audit engine reads the same message
 * as a subscriber and takes it: MQTT 3.1.1 carries no publisher to subscribers, and a request's
 * own `by` is whatever its sender wrote. The hub notes the requests it publishes itself too (the
 * REST API's, recorded there), with any broker. Keyed by a digest of topic and payload, so a request
 * can only be attributed to whoever published those exact bytes. Bounded: past MAX_HELD
 * untaken requests (no audit engine reading them) the oldest are forgotten.
 */
export class RequestPublishers {
  private readonly held = new Map<string, RequestPublisher[]>();
  private size = 0;

  constructor(private readonly max = MAX_HELD) {}

  /** Called by the broker for every publish it accepted; keeps only the audited requests'. */
  noteAccepted(who: Identity, address: string, topic: string, payload: Buffer | string): void {
    if (requestIdOf(topic, payload) === null) return;
    const key = keyOf(topic, payload);
    const publisher = 'name' in who ? { name: who.name, role: who.role, address } : { name: null, role: 'anonymous', address };
    const list = this.held.get(key);
    if (list) list.push(publisher);
    else this.held.set(key, [publisher]);
    if (++this.size > this.max) this.dropOldest();
  }

  /** The publisher of this message, once (the next copy has its own); undefined if none was noted. */
  take(topic: string, payload: Buffer): RequestPublisher | undefined {
    const key = keyOf(topic, payload);
    const list = this.held.get(key);
    if (!list) return undefined;
    const publisher = list.shift();
    this.size--;
    if (list.length === 0) this.held.delete(key);
    return publisher;
  }

  private dropOldest(): void {
    const [key, list] = this.held.entries().next().value!;
    list.shift();
    this.size--;
    if (list.length === 0) this.held.delete(key);
  }
}

const keyOf = (topic: string, payload: Buffer | string): string => createHash('sha256').update(topic).update('\0').update(payload).digest('base64');

import type { Logger } from '../../shared/logger.js';
import type { Clock, Engine } from '../engines/engine.js';
import type { RequestPublishers } from '../broker/request-publishers.js';
import type { AuditInput } from './audit-entry.js';
import type { AuditLog } from './audit-log.js';
import { AUDITED_REQUEST_TOPICS, describeRequest } from './operator-requests.js';

const HUB = { name: 'hub', role: 'hub' } as const;

/** A request no engine answered within this long is recorded as failed (the engine is off, or stuck). */
export const ANSWER_WITHIN_MS = 30_000;
const MAX_AWAITING = 1000;

type Awaiting = { entry: AuditInput; at: number };

/**
 * Records operator requests made over MQTT (rollout pause/resume/abort, freeze, pin, job trigger,
 * service add/remove, retry) and pushes from `pushfleet notify`, with their outcome. It reads them as the engines do, as a subscriber
 * (listed first, so it has seen a request before any engine answers it), and records an answered
 * request when the engine's reply goes out: `beforePublish` holds the reply until the entry is
 * committed, so an operator who got an answer finds the entry after any crash.
 *
 * Who: with the embedded broker, the account the broker checked (RequestPublishers); requests the
 * hub published itself (the REST API's, recorded there with the token's name) are skipped. With an
 * external broker the hub cannot know who published a message: the entry says who the request
 * claims to be from (`by`), with identity `claimed`.
 */
export class MqttActionAudit implements Engine {
  readonly name = 'audit';
  readonly subscriptions = AUDITED_REQUEST_TOPICS;
  private readonly awaiting = new Map<string, Awaiting>();
  private sweep: unknown;

  constructor(
    private readonly deps: {
      audit: AuditLog;
      clock: Clock;
      log: Logger;
      publishers: RequestPublishers;
      /** The embedded broker notes every request's publisher; an external one none. */
      brokerNamesPublishers: boolean;
    },
  ) {}

  async start(): Promise<void> {
    this.schedule();
  }

  async stop(): Promise<void> {
    this.deps.clock.clearTimeout(this.sweep);
  }

  handle(topic: string, payload: Buffer): void {
    const request = describeRequest(topic, payload);
    if (!request) return;
    const publisher = this.deps.publishers.take(topic, payload);
    // The hub's own (the REST API's, recorded there); with the embedded broker, one never noted at
    // its door was published by the hub past the door (broker.publish).
    if (publisher?.role === 'hub' || (!publisher && this.deps.brokerNamesPublishers)) return;
    const who: Pick<AuditInput, 'who' | 'identity' | 'address'> = publisher
      ? { who: publisher.name, identity: publisher.name === null ? 'none' : 'mqtt-account', address: publisher.address }
      : { who: request.by, identity: 'claimed', address: null };
    const entry: AuditInput = { kind: request.kind, via: 'mqtt', ...who, action: request.action, target: request.target, outcome: 'accepted', reason: request.what ?? null };
    if (request.replyTopic === null) {
      this.deps.audit.note({ ...entry, reason: 'sent to the agent' });
      return;
    }
    if (this.awaiting.size >= MAX_AWAITING) this.fail(this.awaiting.keys().next().value!, `recorded unanswered: more than ${MAX_AWAITING} requests awaited an answer`);
    this.awaiting.set(request.replyTopic, { entry, at: this.deps.clock.now() });
  }

  /**
   * Called with every message the hub publishes, before it goes out: a request of its own is
   * noted (so it is not recorded again when it comes back); for the answer to a recorded request,
   * resolves once its entry (with the answer's outcome) is committed.
   */
  beforePublish(topic: string, payload: string): Promise<void> | undefined {
    this.deps.publishers.noteAccepted(HUB, 'in-process', topic, payload);
    const waiting = this.awaiting.get(topic);
    if (!waiting) return undefined;
    this.awaiting.delete(topic);
    return this.deps.audit
      .record({ ...waiting.entry, ...answerOf(payload, waiting.entry.reason ?? null) })
      .catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message, topic }, 'audit entry not written; answering anyway'));
  }

  private schedule(): void {
    this.sweep = this.deps.clock.setTimeout(() => {
      this.expire(this.deps.clock.now() - ANSWER_WITHIN_MS, `no engine answered within ${ANSWER_WITHIN_MS / 1000} s (is it enabled?)`);
      this.schedule();
    }, ANSWER_WITHIN_MS / 3);
  }

  /** Records as failed the requests awaiting an answer since before `before` (the map is in arrival order). */
  private expire(before: number, reason: string): void {
    for (const [topic, waiting] of this.awaiting) {
      if (waiting.at >= before) break;
      this.fail(topic, reason);
    }
  }

  private fail(replyTopic: string, reason: string): void {
    const waiting = this.awaiting.get(replyTopic)!;
    this.awaiting.delete(replyTopic);
    this.deps.audit.note({ ...waiting.entry, outcome: 'failed', reason });
  }
}

/** The outcome an engine's answer gives: `{ok, error}` of the request engines, or the `state` of a notify reply (after `what` was pushed). */
function answerOf(payload: string, what: string | null): Pick<AuditInput, 'outcome' | 'reason'> {
  let reply: { ok?: unknown; error?: unknown; state?: unknown; detail?: unknown };
  try {
    reply = JSON.parse(payload) as typeof reply;
  } catch {
    return { outcome: 'failed', reason: 'the engine answered with no JSON' };
  }
  if (typeof reply.state === 'string') {
    const outcome = reply.state === 'duplicate' ? 'duplicate' : reply.state === 'not-published' ? 'failed' : 'accepted';
    return { outcome, reason: `${what}: ${reply.state}${typeof reply.detail === 'string' && reply.state !== 'published' ? ` (${reply.detail})` : ''}` };
  }
  if (reply.ok === true) return { outcome: 'accepted', reason: null };
  return { outcome: 'rejected', reason: typeof reply.error === 'string' ? reply.error : 'the engine refused it' };
}

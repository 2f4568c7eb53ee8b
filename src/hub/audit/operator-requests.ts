import { JOBS_REQUEST, JobsRequest, jobsReplyTopic } from '../../shared/contract/jobs-engine-messages.js';
import { RetryRequest, RolloutControl } from '../../shared/contract/rollout-messages.js';
import { SERVICES_REQUEST, ServicesRequest, servicesReplyTopic } from '../../shared/contract/services-engine-messages.js';
import { TopicContract } from '../../shared/contract/topic-table.js';
import { decode } from '../../shared/messages.js';
import { NotifyRequest } from '../../shared/contract/notify-messages.js';
import { NOTIFY_REQUEST, notifyReplyTopic, ROLLOUT_CONTROL, rolloutReplyTopic } from '../../shared/topics.js';

// The retry topic does not depend on the semaphore prefix or seed root: the default table knows it.
const RETRY = new TopicContract().specs.find((s) => s.name === 'agent.retry')!.pattern;
const REQUEST_TOPICS: ReadonlySet<string> = new Set([ROLLOUT_CONTROL, JOBS_REQUEST, SERVICES_REQUEST, NOTIFY_REQUEST]);

/** The operator requests over MQTT the audit log records (reads such as `list` are not), and pushes from `pushfleet notify`. */
export const AUDITED_REQUEST_TOPICS = [...REQUEST_TOPICS, RETRY.filter()];

/**
 * An operator's request as the audit log names it: an action, or a delivery (a push from a
 * post-receive hook); an engine answers on `replyTopic` (null: the hub does not answer it).
 */
export type OperatorRequest = { kind: 'action' | 'delivery'; requestId: string; by: string; action: string; target: string; replyTopic: string | null; what?: string };

/** What an MQTT request asks for, or null for a read, another topic, or a payload no engine would take. */
export function describeRequest(topic: string, payload: Buffer): OperatorRequest | null {
  if (topic === ROLLOUT_CONTROL) {
    const d = decode(RolloutControl, payload);
    if (!d.ok) return null;
    const req = d.value;
    const base = { kind: 'action' as const, requestId: req.requestId, by: req.by, replyTopic: rolloutReplyTopic(req.requestId) };
    switch (req.op) {
      case 'list':
        return null;
      case 'pause':
      case 'resume':
      case 'abort':
        return { ...base, action: `rollout.${req.op}`, target: req.id };
      case 'freeze':
      case 'unfreeze':
        return { ...base, action: `environment.${req.op}`, target: req.env };
      case 'pin':
        return { ...base, action: 'agent.pin', target: `${req.agent}/${req.app}@${req.sha.slice(0, 12)}` };
      case 'unpin':
        return { ...base, action: 'agent.unpin', target: `${req.agent}/${req.app}` };
    }
  }
  if (topic === JOBS_REQUEST) {
    const d = decode(JobsRequest, payload);
    if (!d.ok || d.value.op !== 'trigger') return null;
    return { kind: 'action', requestId: d.value.requestId, by: d.value.by, action: 'job.trigger', target: d.value.job, replyTopic: jobsReplyTopic(d.value.requestId) };
  }
  if (topic === SERVICES_REQUEST) {
    const d = decode(ServicesRequest, payload);
    if (!d.ok) return null;
    const req = d.value;
    const replyTopic = servicesReplyTopic(req.requestId);
    const base = { kind: 'action' as const, requestId: req.requestId, by: req.by, replyTopic };
    if (req.op === 'add') return { ...base, action: 'service.add', target: req.service.name };
    if (req.op === 'rm') return { ...base, action: 'service.remove', target: req.name };
    return null;
  }
  if (topic === NOTIFY_REQUEST) {
    const d = decode(NotifyRequest, payload);
    if (!d.ok) return null;
    const { requestId, push } = d.value;
    const what = `${push.repo} ${push.ref} ${push.after.slice(0, 12)}`;
    return { kind: 'delivery', requestId, by: push.pusher.name, action: 'delivery', target: push.deliveryId, replyTopic: notifyReplyTopic(requestId), what };
  }
  const retry = RETRY.match(topic);
  if (retry) {
    const d = decode(RetryRequest, payload);
    // The agent answers in its app state, not to the hub: the request is all the hub sees.
    return d.ok ? { kind: 'action', requestId: d.value.requestId, by: d.value.by, action: 'app.retry', target: `${retry.agent}/${d.value.app}`, replyTopic: null } : null;
  }
  return null;
}

/** `requestId` of a request on one of the audited topics, cheaply (the broker's door calls it for each). */
export function requestIdOf(topic: string, payload: Buffer | string): string | null {
  if (!REQUEST_TOPICS.has(topic) && !RETRY.match(topic)) return null;
  try {
    const id = (JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8')) as { requestId?: unknown }).requestId;
    return typeof id === 'string' ? id.slice(0, 64) : null;
  } catch {
    return null;
  }
}

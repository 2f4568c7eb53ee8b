import { JOBS_REQUEST, JobsRequest } from '../../shared/contract/jobs-engine-messages.js';
import { RetryRequest, RolloutControl } from '../../shared/contract/rollout-messages.js';
import { SERVICES_REQUEST, ServicesRequest } from '../../shared/contract/services-engine-messages.js';
import { decode } from '../../shared/messages.js';
import { NotifyRequest } from '../../shared/contract/notify-messages.js';
import { NOTIFY_REQUEST, ROLLOUT_CONTROL } from '../../shared/topics.js';

/** The operator requests over MQTT the audit log records (reads such as `list` are not), and pushes from `pushfleet notify`. */
export const AUDITED_REQUEST_TOPICS = [ROLLOUT_CONTROL, JOBS_REQUEST, SERVICES_REQUEST, NOTIFY_REQUEST, 'pushfleet/agents/+/retry'] as const;

/**
 * An operator's request as the audit log names it: an action, or a delivery (a push from a
 * post-receive hook); an engine answers on `replyTopic` (null: the hub does not answer it).
 */
export type OperatorRequest = { kind: 'action' | 'delivery'; requestId: string; by: string; action: string; target: string; replyTopic: string | null; what?: string };

const RETRY = /^pushfleet\/agents\/([^/]+)\/retry$/;

/** What an MQTT request asks for, or null for a read, another topic, or a payload no engine would take. */
export function describeRequest(topic: string, payload: Buffer): OperatorRequest | null {
  if (topic === ROLLOUT_CONTROL) {
    const d = decode(RolloutControl, payload);
    if (!d.ok) return null;
    const req = d.value;
    const base = { kind: 'action' as const, requestId: req.requestId, by: req.by, replyTopic: `pushfleet/rollouts/replies/${req.requestId}` };
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
    return { kind: 'action', requestId: d.value.requestId, by: d.value.by, action: 'job.trigger', target: d.value.job, replyTopic: `pushfleet/jobs/replies/${d.value.requestId}` };
  }
  if (topic === SERVICES_REQUEST) {
    const d = decode(ServicesRequest, payload);
    if (!d.ok) return null;
    const req = d.value;
    const replyTopic = `pushfleet/services-replies/${req.requestId}`;
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
    return { kind: 'delivery', requestId, by: push.pusher.name, action: 'delivery', target: push.deliveryId, replyTopic: `pushfleet/notify/replies/${requestId}`, what };
  }
  const retry = RETRY.exec(topic);
  if (retry) {
    const d = decode(RetryRequest, payload);
    // The agent answers in its app state, not to the hub: the request is all the hub sees.
    return d.ok ? { kind: 'action', requestId: d.value.requestId, by: d.value.by, action: 'app.retry', target: `${retry[1]}/${d.value.app}`, replyTopic: null } : null;
  }
  return null;
}

/** `requestId` of a request on one of the audited topics, cheaply (the broker's door calls it for each). */
export function requestIdOf(topic: string, payload: Buffer | string): string | null {
  if (topic !== ROLLOUT_CONTROL && topic !== JOBS_REQUEST && topic !== SERVICES_REQUEST && topic !== NOTIFY_REQUEST && !RETRY.test(topic)) return null;
  try {
    const id = (JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8')) as { requestId?: unknown }).requestId;
    return typeof id === 'string' ? id.slice(0, 64) : null;
  } catch {
    return null;
  }
}

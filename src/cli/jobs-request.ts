import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import type { z } from 'zod';
import { JOBS_REQUEST, JobsReply, jobsReplyTopic, JobsRequest } from '../shared/contract/jobs-engine-messages.js';
import { SCHEMA_VERSION } from '../shared/messages.js';
import { requestHub } from './mqtt-request.js';
import { operator } from './rollout-request.js';

/** A request as a command builds it; the envelope (v, requestId, by) is added here. */
export type JobsOp = z.input<typeof JobsRequest> extends infer R ? (R extends unknown ? Omit<R, 'v' | 'requestId' | 'by'> : never) : never;

/** Sends one request to the hub's jobs engine and waits for its reply. */
export function requestJobs(client: MqttClient, op: JobsOp, timeoutSeconds: number): Promise<JobsReply> {
  const requestId = randomUUID().replaceAll('-', '');
  return requestHub(client, {
    topic: JOBS_REQUEST,
    payload: JSON.stringify({ v: SCHEMA_VERSION, requestId, by: operator(), ...op }),
    replyTopic: jobsReplyTopic(requestId),
    reply: JobsReply,
    timeoutSeconds,
    noAnswer: 'is it running, with engines.jobs.table set, on this broker?',
  });
}

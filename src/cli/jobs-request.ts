import type { MqttClient } from 'mqtt';
import type { z } from 'zod';
import { JOBS_REQUEST, JobsReply, jobsReplyTopic, JobsRequest } from '../shared/contract/jobs-engine-messages.js';
import { requestEngine, type EngineRoute } from './mqtt-request.js';

/** A request as a command builds it; the envelope (v, requestId, by) is added by requestEngine. */
export type JobsOp = z.input<typeof JobsRequest> extends infer R ? (R extends unknown ? Omit<R, 'v' | 'requestId' | 'by'> : never) : never;

const JOBS: EngineRoute<JobsReply> = {
  topic: JOBS_REQUEST,
  replyTopic: jobsReplyTopic,
  reply: JobsReply,
  noAnswer: 'is it running, with engines.jobs.table set, on this broker?',
};

/** Sends one request to the hub's jobs engine and waits for its reply. */
export function requestJobs(client: MqttClient, op: JobsOp, timeoutSeconds: number): Promise<JobsReply> {
  return requestEngine(client, JOBS, op, timeoutSeconds);
}

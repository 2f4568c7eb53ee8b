import type { MqttClient } from 'mqtt';
import type { z } from 'zod';
import { JOBS_REQUEST, JobsReply, jobsReplyTopic, JobsRequest } from '../shared/contract/jobs-engine-messages.js';
import { requestEngine, type EngineOp, type EngineRoute } from './mqtt-request.js';

export type JobsOp = EngineOp<z.input<typeof JobsRequest>>;

export const JOBS: EngineRoute<JobsReply> = {
  topic: JOBS_REQUEST,
  replyTopic: jobsReplyTopic,
  reply: JobsReply,
  noAnswer: 'is it running, with engines.jobs.table set, on this broker?',
};

/** Sends one request to the hub's jobs engine and waits for its reply. */
export function requestJobs(client: MqttClient, op: JobsOp, timeoutSeconds: number): Promise<JobsReply> {
  return requestEngine(client, JOBS, op, timeoutSeconds);
}

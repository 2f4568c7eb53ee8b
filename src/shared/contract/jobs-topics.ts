import { JobCompletion, JobsRequest, JOBS_REQUEST } from './jobs-engine-messages.js';
import type { Rule, TopicSpec } from './topic-table.js';
import { anything, json, topicSpec } from './topic-spec.js';

const operator: Rule = { role: 'operator' };
const everyone: readonly Rule[] = [operator, { role: 'agent' }, { role: 'client' }];
const NOBODY: readonly Rule[] = [];

/**
 * The jobs engine's own topics, for the topic table. Completions are the hub's alone (a chain
 * must not be started by a forged completion); everyone may read them. Trigger topics are the
 * table's, not listed here: the engine tells the contract (TopicContract.setJobTriggers).
 */
export function jobsTopics(prefix: string): TopicSpec[] {
  const spec = topicSpec;
  const completion = json(JobCompletion);
  return [
    spec('jobs.complete', `${prefix}/job_complete/{job}`, { about: 'a run of the job ended (any status)', payload: completion, publish: NOBODY, subscribe: everyone }),
    spec('jobs.failed', `${prefix}/job_failed/{job}`, { about: 'a run of the job failed', payload: completion, publish: NOBODY, subscribe: everyone }),
    spec('jobs.refresh', `${prefix}/refresh`, { about: 'read the jobs table again', payload: anything, publish: [operator], subscribe: NOBODY }),
    spec('jobs.error', `${prefix}/error`, { about: 'a bad row, an unreadable table, a run that could not be carried out', payload: anything, publish: NOBODY, subscribe: everyone }),
    spec('jobs.request', JOBS_REQUEST, { about: 'list, runs, show, logs, trigger', payload: json(JobsRequest), publish: [operator], subscribe: NOBODY }),
    spec('jobs.reply', 'pushfleet/jobs/replies/{request}', { about: "the hub's answer to a jobs request", payload: anything, publish: NOBODY, subscribe: [operator] }),
  ];
}

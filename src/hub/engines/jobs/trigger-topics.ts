import type { TopicContract } from '../../../shared/contract/topic-table.js';

/**
 * Why a row's `mqtt_topic` may not trigger jobs, or undefined: it may reach no pushfleet topic
 * but the jobs' completions (which is how jobs chain). Shared by the engine and `jobs check`.
 */
export function ownTopicProblem(contract: TopicContract, prefix: string, filter: string): string | undefined {
  const own = contract.ownTopicsUnder(filter);
  return own.length ? `mqtt_topic ${filter} reaches pushfleet's own topics (${own.slice(0, 3).join(', ')}); only ${prefix}/job_complete/… and ${prefix}/job_failed/… may trigger jobs` : undefined;
}

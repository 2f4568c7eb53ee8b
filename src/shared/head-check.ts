import type { PushMessage } from './messages.js';
import { headTopic } from './topics.js';

/**
 * How far in the future a head's `receivedAt` may lie: the hub's and an agent's clocks may
 * disagree by this much. Beyond it the head is refused, because heads are ordered by
 * `receivedAt` and one dated year 9999 would win over every genuine push after it.
 */
export const HEAD_CLOCK_TOLERANCE_MS = 5 * 60_000;

/**
 * Why a retained head must not be acted on or stored, or null when it may: its repo and ref must
 * be the ones its topic names, and it may not be dated in the future (beyond the tolerance).
 * Shared by the agent (which heads to follow) and the hub's heads engine (which heads to keep).
 */
export function refuseHead(topic: string, push: Pick<PushMessage, 'repo' | 'ref' | 'receivedAt'>, nowMs: number): string | null {
  const own = headTopic(push.repo, push.ref);
  if (own !== topic) return `a head for ${push.repo} ${push.ref} belongs on ${own}, not on ${topic}`;
  const ahead = Date.parse(push.receivedAt) - nowMs;
  if (ahead > HEAD_CLOCK_TOLERANCE_MS) return `dated ${push.receivedAt}, ${Math.round(ahead / 1000)} s in the future (tolerance ${HEAD_CLOCK_TOLERANCE_MS / 1000} s)`;
  return null;
}

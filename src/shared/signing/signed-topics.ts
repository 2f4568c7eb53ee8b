import type { TopicContract } from '../contract/topic-table.js';

/**
 * `state`: retained (heads, pins, grants): no age limit, ordered by seq. `command`: acted on once
 * (rollbacks, orchestrator commands): refused when older than the verifier's max age.
 * `emptyClears`: an empty payload clears the retained topic and is taken unsigned (see the topic
 * table's `clearMovesAgent`).
 */
export type SignedTopic = { kind: 'state' | 'command'; emptyClears: boolean };

/**
 * Whether a message on `topic` must carry the hub's signature, and how it is checked; null when
 * it need not. Decided by the topic contract; both the hub's signer and the agent's verifier ask.
 */
export function signedTopic(contract: TopicContract, topic: string): SignedTopic | null {
  const spec = contract.signedSpec(topic);
  if (!spec) return null;
  return { kind: spec.retained ? 'state' : 'command', emptyClears: spec.retained && !spec.clearMovesAgent };
}

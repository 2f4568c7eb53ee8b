import type { TopicContract } from '../contract/topic-table.js';

/**
 * `state`: retained (heads, pins, grants): no age limit, ordered by seq. `command`: acted on once
 * (rollbacks, orchestrator commands): refused when older than the verifier's max age.
 * `emptyClears`: an empty payload clears the retained topic and is taken unsigned, because on
 * that topic it can only make an agent forget something (a deleted branch's head, a go that
 * ended), never move it. Pins are cleared by a signed empty payload instead: unpinning moves.
 */
export type SignedTopic = { kind: 'state' | 'command'; emptyClears: boolean };

/** The one retained signed topic whose clearing makes an agent act. */
const CLEARING_ACTS = new Set(['agent.pin']);

/**
 * Whether a message on `topic` must carry the hub's signature, and how it is checked; null when
 * it need not. Decided by the topic contract; both the hub's signer and the agent's verifier ask.
 */
export function signedTopic(contract: TopicContract, topic: string): SignedTopic | null {
  if (!contract.isSigned(topic)) return null;
  const spec = contract.lookup(topic)!.spec;
  return { kind: spec.retained ? 'state' : 'command', emptyClears: spec.retained && !CLEARING_ACTS.has(spec.name) };
}

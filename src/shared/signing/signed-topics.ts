import { topicMatches } from '../topic-match.js';
import { ROLLOUT_CHANNEL_PREFIX, ROOT } from '../topics.js';

/**
 * `state`: retained (heads, pins, grants): no age limit, ordered by seq. `command`: acted on once
 * (rollbacks, orchestrator commands): refused when older than the verifier's max age.
 * `emptyClears`: an empty payload clears the retained topic and is taken unsigned, because on
 * that topic it can only make an agent forget something (a deleted branch's head, a go that
 * ended), never move it. Pins are cleared by a signed empty payload instead: unpinning moves.
 */
export type SignedTopic = { kind: 'state' | 'command'; emptyClears: boolean };

const TABLE: readonly (SignedTopic & { filter: string })[] = [
  { filter: `${ROOT}/heads/#`, kind: 'state', emptyClears: true },
  { filter: `${ROOT}/agents/+/pins/+`, kind: 'state', emptyClears: false },
  { filter: `${ROOT}/agents/+/rollback`, kind: 'command', emptyClears: false },
  { filter: `${ROOT}/orchestrator/nodes/+/command`, kind: 'command', emptyClears: false },
];
/** Go grants of rollout channels, under any semaphore prefix, with or without its leading "/". */
const ROLLOUT_GO = new RegExp(`^/?(?:[^/+#]+/)+${ROLLOUT_CHANNEL_PREFIX.replaceAll('.', '\\.')}[^/+#]+/go/[^/+#]+$`);
const GO: SignedTopic = { kind: 'state', emptyClears: true };

/**
 * Whether a message on `topic` must carry the hub's signature, and how it is checked; null when
 * it need not. The one place both the hub's signer and the agent's verifier ask.
 * TODO(issue 10): replace with `topicSpecFor(topic).signed` once src/shared/contract/ lands.
 */
export function signedTopic(topic: string): SignedTopic | null {
  for (const t of TABLE) if (topicMatches(t.filter, topic)) return t;
  return ROLLOUT_GO.test(topic) ? GO : null;
}

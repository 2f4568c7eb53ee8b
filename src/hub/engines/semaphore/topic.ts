import { SEM_INPUTS, type SemInput } from '../../../shared/topics.js';

export type ParsedTopic =
  /** One of our own events coming back through our subscription: nothing to do. */
  | { kind: 'own' }
  /** One of our retained topics: a copy the broker kept must agree with the state. */
  | { kind: 'retained'; route: string; channel: string; output: 'go' | 'expired'; uid: string }
  | { kind: 'action'; route: string; channel: string; action: SemInput }
  /** Answer with an error event on `errorTopic`. */
  | { kind: 'bad'; route: string; channel?: string; error: string; code: 'bad-topic' | 'unknown-action' };

/** Levels that the engine itself publishes under `{route}/{channel}/`. */
const OWN = /^queued\/[^/]+$|^error$|^infos\/reply$/;
const RETAINED = /^(go|expired)\/([^/]+)$/;

/**
 * Splits `{route}/{channel}/{action}` as the seed does (channel is one level, action is the rest),
 * accepting the prefix with or without a leading "/".
 */
export function parseSemaphoreTopic(prefix: string, topic: string): ParsedTopic {
  const route = topic.startsWith('/') ? `/${prefix}` : prefix;
  const rest = topic === route ? '' : topic.slice(route.length + 1);
  if (rest === 'error') return { kind: 'own' };
  const slash = rest.indexOf('/');
  const channel = slash < 0 ? rest : rest.slice(0, slash);
  const action = slash < 0 ? '' : rest.slice(slash + 1);
  if (channel === '') return { kind: 'bad', route, code: 'bad-topic', error: `no channel in topic; expected ${route}/{channel}/{action}` };
  if (OWN.test(action)) return { kind: 'own' };
  const retained = RETAINED.exec(action);
  if (retained) return { kind: 'retained', route, channel, output: retained[1] as 'go' | 'expired', uid: retained[2]! };
  if (action === '') return { kind: 'bad', route, channel, code: 'bad-topic', error: `no action in topic; expected one of ${SEM_INPUTS.join(', ')}` };
  if (!SEM_INPUTS.includes(action)) {
    return { kind: 'bad', route, channel, code: 'unknown-action', error: `unknown action "${action.slice(0, 64)}"; expected one of ${SEM_INPUTS.join(', ')}` };
  }
  return { kind: 'action', route, channel, action: action as SemInput };
}

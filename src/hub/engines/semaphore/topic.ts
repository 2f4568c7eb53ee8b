import { SEM_INPUTS, type SemInput } from '../../../shared/topics.js';

export type ParsedTopic =
  /** One of our own events coming back through our subscription: nothing to do. */
  | { kind: 'own' }
  | { kind: 'action'; route: string; channel: string; action: SemInput }
  /** Answer with an error event on `errorTopic`. */
  | { kind: 'bad'; route: string; channel?: string; error: string; code: 'bad-topic' | 'unknown-action' };

/** Levels that the engine itself publishes under `{route}/{channel}/`. */
const OWN = /^(?:go|queued|expired)\/[^/]+$|^error$|^infos\/reply$/;

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
  if (action === '') return { kind: 'bad', route, channel, code: 'bad-topic', error: `no action in topic; expected one of ${SEM_INPUTS.join(', ')}` };
  if (!SEM_INPUTS.includes(action)) {
    return { kind: 'bad', route, channel, code: 'unknown-action', error: `unknown action "${action.slice(0, 64)}"; expected one of ${SEM_INPUTS.join(', ')}` };
  }
  return { kind: 'action', route, channel, action: action as SemInput };
}

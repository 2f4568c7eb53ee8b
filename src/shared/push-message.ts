import { parseRef } from './git-ref.js';
import { PushMessage, SCHEMA_VERSION } from './messages.js';

export type PushFields = Omit<PushMessage, 'v' | 'refType' | 'branch' | 'tag'>;

/** Builds a push message from whichever source saw the push, deriving branch/tag from the ref. */
export function buildPushMessage(fields: PushFields): PushMessage {
  const ref = parseRef(fields.ref);
  return PushMessage.parse({
    v: SCHEMA_VERSION,
    ...fields,
    refType: ref?.type,
    branch: ref?.type === 'branch' ? ref.name : null,
    tag: ref?.type === 'tag' ? ref.name : null,
  });
}

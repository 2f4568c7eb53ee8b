import { parseRef } from './git-ref.js';
import { PushMessage, SCHEMA_VERSION } from './messages.js';

export type PushFields = Omit<PushMessage, 'v' | 'refType' | 'branch' | 'tag'>;

/** Free text from a commit is unbounded; the message carries a bounded excerpt of it. */
const clip = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);
const clipOrNull = (text: string | null, max: number): string | null => (text === null ? null : clip(text, max));

/** Builds a push message from whichever source saw the push, deriving branch/tag from the ref. */
export function buildPushMessage(fields: PushFields): PushMessage {
  const ref = parseRef(fields.ref);
  const head = fields.headCommit;
  return PushMessage.parse({
    v: SCHEMA_VERSION,
    ...fields,
    refType: ref?.type,
    branch: ref?.type === 'branch' ? ref.name : null,
    tag: ref?.type === 'tag' ? ref.name : null,
    pusher: { name: clip(fields.pusher.name, 200), email: clipOrNull(fields.pusher.email, 320) },
    headCommit: head && {
      ...head,
      message: clip(head.message, 4096),
      author: { name: clip(head.author.name, 200), email: clipOrNull(head.author.email, 320), username: clipOrNull(head.author.username, 200) },
    },
  });
}

import { z } from 'zod';
import { GitRef, RepoName, Sha, type PushMessage } from '../../shared/messages.js';
import { buildPushMessage } from '../../shared/push-message.js';

/** The part of GitHub's `push` event payload pushfleet reads; other fields are ignored. */
const Person = z.object({
  name: z.string(),
  email: z.string().nullish(),
  username: z.string().nullish(),
});

export const GitHubPushPayload = z.object({
  ref: GitRef,
  before: Sha,
  after: Sha,
  created: z.boolean(),
  deleted: z.boolean(),
  forced: z.boolean(),
  repository: z.object({ full_name: RepoName, clone_url: z.string().url() }),
  pusher: z.object({ name: z.string(), email: z.string().nullish() }),
  head_commit: z
    .object({ id: Sha, message: z.string(), timestamp: z.string().datetime({ offset: true }), author: Person })
    .nullish(),
});
export type GitHubPushPayload = z.infer<typeof GitHubPushPayload>;

/** GitHub's payload in, pushfleet's documented push message out. */
export function toPushMessage(payload: GitHubPushPayload, deliveryId: string, receivedAt: Date): PushMessage {
  const head = payload.head_commit;
  return buildPushMessage({
    deliveryId,
    source: 'github',
    repo: payload.repository.full_name,
    ref: payload.ref,
    before: payload.before,
    after: payload.after,
    created: payload.created,
    deleted: payload.deleted,
    forced: payload.forced,
    pusher: { name: payload.pusher.name, email: payload.pusher.email ?? null },
    headCommit: head
      ? {
          id: head.id,
          message: head.message,
          timestamp: head.timestamp,
          author: { name: head.author.name, email: head.author.email ?? null, username: head.author.username ?? null },
        }
      : null,
    cloneUrl: payload.repository.clone_url,
    receivedAt: receivedAt.toISOString(),
  });
}

import type { PushMessage } from '../../shared/messages.js';
import { pushedSha } from '../../shared/push-match.js';
import { headTopic } from '../../shared/topics.js';
import { paged, type Paged } from './paged.js';

/** A ref's newest push, as the API shows it (GET /api/v1/heads). */
export type Head = { repo: string; ref: string; sha: string; deliveryId: string; pusher: string; receivedAt: string };

/**
 * The newest head of each ref, from the retained `pushfleet/heads/…` the hub publishes: what
 * agents following that ref converge on. Past `max` refs the one written longest ago goes, as in
 * the hub's HeadStore.
 */
export class HeadView {
  private readonly heads = new Map<string, Head>();

  constructor(private readonly max: number) {}

  /** A head as retained on `topic`; null (an empty payload, a deleted ref) forgets it. */
  take(topic: string, push: PushMessage | null): void {
    this.heads.delete(topic);
    if (!push || push.deleted) return;
    if (this.heads.size >= this.max) this.heads.delete(this.heads.keys().next().value!);
    this.heads.set(topic, { repo: push.repo, ref: push.ref, sha: pushedSha(push), deliveryId: push.deliveryId, pusher: push.pusher.name, receivedAt: push.receivedAt });
  }

  get(repo: string, ref: string): Head | undefined {
    return this.heads.get(headTopic(repo, ref));
  }

  list(page: { offset: number; limit: number }, repo?: string): Paged<Head> {
    const all = [...this.heads.values()].filter((h) => repo === undefined || h.repo === repo);
    all.sort((a, b) => (a.repo === b.repo ? (a.ref < b.ref ? -1 : 1) : a.repo < b.repo ? -1 : 1));
    return paged(all, page);
  }
}

import picomatch from 'picomatch';
import type { PushMessage } from './messages.js';

/** What an app follows: a repo and a branch or tag name/glob (agent config, or an AppState's `follows`). */
export type Follows = { repo: string; branch?: string; tag?: string };

/**
 * Does this app follow this push? Same repo, a live ref (not deleted), and the branch or tag
 * name matching the app's name or glob (`*` stays within one path level, `**` crosses them).
 * Shared by the agent (what to update) and the hub (whom a rollout targets).
 */
export function appFollowsPush(app: Follows, push: Pick<PushMessage, 'repo' | 'deleted' | 'branch' | 'tag'>): boolean {
  if (push.repo !== app.repo || push.deleted) return false;
  if (app.branch !== undefined) return push.branch !== null && matcher(app.branch)(push.branch);
  return app.tag !== undefined && push.tag !== null && matcher(app.tag)(push.tag);
}

/** Compiled globs: the hub plans a push over every host's app, and compiling one per host was most of a 1,000-host plan. */
const matchers = new Map<string, (name: string) => boolean>();
const MAX_MATCHERS = 1024;

function matcher(glob: string): (name: string) => boolean {
  let match = matchers.get(glob);
  if (!match) {
    if (matchers.size >= MAX_MATCHERS) matchers.clear();
    match = picomatch(glob);
    matchers.set(glob, match);
  }
  return match;
}

/** The commit a push deploys: an annotated tag's `after` is the tag object, its head commit is what gets checked out. */
export function pushedSha(push: Pick<PushMessage, 'after' | 'headCommit'>): string {
  return push.headCommit?.id ?? push.after;
}

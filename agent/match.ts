import picomatch from 'picomatch';
import type { PushMessage } from '../src/shared/messages.js';
import type { AppConfig } from './config.js';

type Follows = Pick<AppConfig, 'repo' | 'branch' | 'tag'>;

/**
 * Does this app follow this push? Same repo, a live ref (not deleted), and the branch or tag
 * name matching the app's name or glob (`*` stays within one path level, `**` crosses them).
 */
export function appFollowsPush(app: Follows, push: Pick<PushMessage, 'repo' | 'deleted' | 'branch' | 'tag'>): boolean {
  if (push.repo !== app.repo || push.deleted) return false;
  if (app.branch !== undefined) return push.branch !== null && picomatch.isMatch(push.branch, app.branch);
  return app.tag !== undefined && push.tag !== null && picomatch.isMatch(push.tag, app.tag);
}

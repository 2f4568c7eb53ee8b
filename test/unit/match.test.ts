import { describe, expect, it } from 'vitest';
import { appFollowsPush } from '../../src/shared/push-match.js';

const push = (over: Partial<{ repo: string; branch: string | null; tag: string | null; deleted: boolean }>) => ({
  repo: 'acme/web',
  branch: 'main' as string | null,
  tag: null as string | null,
  deleted: false,
  ...over,
});

describe('appFollowsPush', () => {
  it('matches the exact branch of the same repo', () => {
    expect(appFollowsPush({ repo: 'acme/web', branch: 'main' }, push({}))).toBe(true);
    expect(appFollowsPush({ repo: 'acme/web', branch: 'main' }, push({ branch: 'develop' }))).toBe(false);
    expect(appFollowsPush({ repo: 'acme/api', branch: 'main' }, push({}))).toBe(false);
  });

  it('matches globs within one path level, ** across levels', () => {
    const app = { repo: 'acme/web', branch: 'release/*' };
    expect(appFollowsPush(app, push({ branch: 'release/1.2' }))).toBe(true);
    expect(appFollowsPush(app, push({ branch: 'release/1.2/hotfix' }))).toBe(false);
    expect(appFollowsPush(app, push({ branch: 'release' }))).toBe(false);
    expect(appFollowsPush({ repo: 'acme/web', branch: 'release/**' }, push({ branch: 'release/1.2/hotfix' }))).toBe(true);
  });

  it('follows tags only when configured with a tag pattern', () => {
    const tagPush = push({ branch: null, tag: 'v1.4.0' });
    expect(appFollowsPush({ repo: 'acme/web', tag: 'v*' }, tagPush)).toBe(true);
    expect(appFollowsPush({ repo: 'acme/web', tag: 'v2.*' }, tagPush)).toBe(false);
    expect(appFollowsPush({ repo: 'acme/web', branch: '*' }, tagPush)).toBe(false);
    expect(appFollowsPush({ repo: 'acme/web', tag: '*' }, push({}))).toBe(false);
  });

  it('ignores deleted branches and tags', () => {
    expect(appFollowsPush({ repo: 'acme/web', branch: 'main' }, push({ deleted: true }))).toBe(false);
    expect(appFollowsPush({ repo: 'acme/web', tag: 'v*' }, push({ branch: null, tag: 'v1', deleted: true }))).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { isValidGitRef, parseRef } from '../../src/shared/git-ref.js';
import { decode, PushMessage, RepoName, Sha } from '../../src/shared/messages.js';
import { toPushMessage, GitHubPushPayload } from '../../src/hub/webhook/github-push.js';
import { githubPushPayload } from '../support/push-payload.js';

const SHA = 'a'.repeat(40);

describe('git refs', () => {
  it.each(['refs/heads/main', 'refs/heads/release/1.2', 'refs/tags/v1.0.0', 'refs/heads/feature_x-y'])('accepts %s', (ref) => {
    expect(isValidGitRef(ref)).toBe(true);
  });
  it.each([
    'main',
    'refs/remotes/origin/main',
    'refs/heads/-rf',
    'refs/heads/a..b',
    'refs/heads/a b',
    'refs/heads/a~1',
    'refs/heads/a^',
    'refs/heads/a:b',
    'refs/heads/a*',
    'refs/heads/x.lock',
    'refs/heads/.hidden',
    'refs/heads/a//b',
    'refs/heads/a/',
    'refs/heads/@{-1}',
    'refs/heads/a\\b',
  ])('refuses %s', (ref) => {
    expect(isValidGitRef(ref)).toBe(false);
  });
  it('splits branches and tags', () => {
    expect(parseRef('refs/heads/release/1')).toEqual({ type: 'branch', name: 'release/1' });
    expect(parseRef('refs/tags/v1')).toEqual({ type: 'tag', name: 'v1' });
    expect(parseRef('refs/notes/x')).toBeNull();
  });
});

describe('message schema', () => {
  it('validates SHAs and repo names', () => {
    expect(Sha.safeParse(SHA).success).toBe(true);
    expect(Sha.safeParse('b'.repeat(64)).success).toBe(true);
    expect(Sha.safeParse('ABC').success).toBe(false);
    expect(Sha.safeParse(`${SHA}; rm -rf /`).success).toBe(false);
    expect(RepoName.safeParse('acme/web.site').success).toBe(true);
    for (const bad of ['acme', 'acme/web/x', 'acme/+', 'acme/#', 'acme/..', '-x/y']) expect(RepoName.safeParse(bad).success).toBe(false);
  });

  it('maps a recorded GitHub push payload to the documented push message', () => {
    const payload = GitHubPushPayload.parse(githubPushPayload({ after: SHA, ref: 'refs/tags/v2.0.0', created: true }));
    const msg = toPushMessage(payload, 'delivery-1', new Date('2026-11-22T10:00:00Z'));
    expect(msg).toMatchObject({
      v: 1,
      deliveryId: 'delivery-1',
      source: 'github',
      repo: 'acme/web',
      ref: 'refs/tags/v2.0.0',
      refType: 'tag',
      branch: null,
      tag: 'v2.0.0',
      after: SHA,
      created: true,
      deleted: false,
      pusher: { name: 'ada', email: 'ada@example.com' },
      headCommit: { id: SHA, author: { name: 'Ada Lovelace', username: 'ada' } },
      cloneUrl: 'https://github.com/acme/web.git',
      receivedAt: '2026-11-22T10:00:00.000Z',
    });
    expect(decode(PushMessage, JSON.stringify(msg))).toEqual({ ok: true, value: msg });
  });

  it('carries a bounded excerpt of unbounded commit text', () => {
    const payload = githubPushPayload({ after: SHA });
    payload.head_commit.message = 'x'.repeat(100_000);
    payload.head_commit.author.name = 'n'.repeat(1000);
    const msg = toPushMessage(GitHubPushPayload.parse(payload), 'd', new Date());
    expect(msg.headCommit?.message).toHaveLength(4096);
    expect(msg.headCommit?.message.endsWith('…')).toBe(true);
    expect(msg.headCommit?.author.name).toHaveLength(200);
  });

  it('names the offending key and never throws on bad input', () => {
    expect(decode(PushMessage, '{not json')).toMatchObject({ ok: false, error: expect.stringContaining('not valid JSON') });
    const bad = decode(PushMessage, JSON.stringify({ v: 1, after: 'xyz' }));
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toContain('after:');
  });
});

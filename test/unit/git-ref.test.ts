import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { isValidGitRef, parseRef } from '../../src/shared/git-ref.js';

/** What git itself says: `git check-ref-format` exits 0 for a valid refname. */
const gitAccepts = (ref: string): boolean => spawnSync('git', ['check-ref-format', ref]).status === 0;

const REFS = [
  'refs/heads/main', 'refs/heads/release/1.2', 'refs/tags/v1.0.0', 'refs/heads/a.b', 'refs/heads/a./b', 'refs/heads/a.lock.b',
  'refs/heads/a@b', 'refs/heads/@a', 'refs/heads/a-b_c+d=e,f;g', 'refs/heads/ünïcödé', 'refs/heads/HEAD', 'refs/heads/feature/x/y/z',
  'refs/heads//a', 'refs/heads/a//b', 'refs/heads/a/', 'refs/heads/', 'refs/heads/a..b', 'refs/heads/a.', 'refs/heads/.a',
  'refs/heads/a/.b', 'refs/heads/a.lock', 'refs/heads/a.lock/b', 'refs/tags/v1/.lock', 'refs/heads/a@{b', 'refs/heads/a b',
  'refs/heads/a\tb', 'refs/heads/a~1', 'refs/heads/a^', 'refs/heads/a:b', 'refs/heads/a?', 'refs/heads/a*', 'refs/heads/a[b',
  'refs/heads/a\\b', 'refs/heads/a\x7fb', 'refs/heads/a\x01b', 'refs/tags/./a', 'refs/tags/a/..', 'refs/heads/a/./b',
];
/** Valid to git, refused here on purpose (see git-ref.ts): they would read as an option or as HEAD. */
const STRICTER = ['refs/heads/-a', 'refs/tags/--upload-pack=x', 'refs/heads/@'];

describe('isValidGitRef', () => {
  it('agrees with `git check-ref-format` on every ref of the table', () => {
    const verdicts = REFS.map((ref) => ({ ref, ours: isValidGitRef(ref), git: gitAccepts(ref) }));
    expect(verdicts.filter((v) => v.ours !== v.git)).toEqual([]);
    // The table holds both kinds, so agreeing is not trivially "all refused".
    expect(verdicts.filter((v) => v.git).length).toBeGreaterThan(5);
  });

  it('refuses what git accepts but would be read as an option or as HEAD', () => {
    for (const ref of STRICTER) expect({ ref, git: gitAccepts(ref), ours: isValidGitRef(ref) }).toEqual({ ref, git: true, ours: false });
  });

  it('accepts only branches and tags, at most 255 characters', () => {
    expect(isValidGitRef('refs/remotes/origin/main')).toBe(false);
    expect(isValidGitRef('main')).toBe(false);
    expect(isValidGitRef(`refs/heads/${'a'.repeat(244)}`)).toBe(true);
    expect(isValidGitRef(`refs/heads/${'a'.repeat(245)}`)).toBe(false);
    expect(parseRef('refs/tags/v1')).toEqual({ type: 'tag', name: 'v1' });
    expect(parseRef('refs/heads//a')).toBeNull();
  });
});

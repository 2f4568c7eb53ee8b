/**
 * Git ref validation after `git check-ref-format`, restricted to branches and tags: a ref taken
 * from the network is passed to git as an argument, so anything git would reject, or could read
 * as an option or a revision expression, is refused here first.
 */
const FORBIDDEN = /[\x00-\x20\x7f~^:?*[\\]|\.\.|@\{|\/\/|\.lock(?:\/|$)|\/\.|\.$|\/$/;

export function isValidGitRef(ref: string): boolean {
  if (ref.length > 255) return false;
  const m = /^refs\/(heads|tags)\/(.+)$/.exec(ref);
  if (!m) return false;
  const name = m[2]!;
  return !name.startsWith('.') && !name.startsWith('-') && name !== '@' && !FORBIDDEN.test(name);
}

export type RefKind = { type: 'branch' | 'tag'; name: string };

export function parseRef(ref: string): RefKind | null {
  if (!isValidGitRef(ref)) return null;
  return ref.startsWith('refs/heads/')
    ? { type: 'branch', name: ref.slice('refs/heads/'.length) }
    : { type: 'tag', name: ref.slice('refs/tags/'.length) };
}

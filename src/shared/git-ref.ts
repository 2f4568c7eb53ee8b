/**
 * Git ref validation after `git check-ref-format`, restricted to branches and tags: a ref taken
 * from the network is passed to git as an argument, so anything git would reject, or could read
 * as an option or a revision expression, is refused here first. Two refusals go beyond git's
 * rules on purpose: a name starting with `-` (it would read as an option) and the name `@`
 * (a revision shorthand for HEAD). Refs longer than 255 characters are refused too.
 */
const FORBIDDEN_ANYWHERE = /[\x00-\x20\x7f~^:?*[\\]|\.\.|@\{/;

export function isValidGitRef(ref: string): boolean {
  if (ref.length > 255) return false;
  const m = /^refs\/(heads|tags)\/(.+)$/.exec(ref);
  if (!m) return false;
  const name = m[2]!;
  if (name.startsWith('-') || name === '@') return false;
  if (FORBIDDEN_ANYWHERE.test(ref) || ref.endsWith('.')) return false;
  // Each slash-separated component: not empty (no leading, trailing or doubled slash), not
  // starting with a dot, not ending with `.lock`.
  return name.split('/').every((part) => part !== '' && !part.startsWith('.') && !part.endsWith('.lock'));
}

export type RefKind = { type: 'branch' | 'tag'; name: string };

export function parseRef(ref: string): RefKind | null {
  if (!isValidGitRef(ref)) return null;
  return ref.startsWith('refs/heads/')
    ? { type: 'branch', name: ref.slice('refs/heads/'.length) }
    : { type: 'tag', name: ref.slice('refs/tags/'.length) };
}

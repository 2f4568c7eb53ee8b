/** How values read on the page: short SHAs, relative times, labels as k=v. */

export const shortSha = (sha: string | null | undefined): string => (sha ? sha.slice(0, 10) : '—');

/** "12 s ago", "3 min ago", …; the full time goes in the element's title. */
export function ago(at: string | number | null | undefined, now = Date.now()): string {
  if (at === null || at === undefined || at === '') return '—';
  const t = typeof at === 'number' ? at : Date.parse(at);
  if (Number.isNaN(t)) return String(at);
  const s = Math.round((now - t) / 1000);
  if (s < 0) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export const isoOf = (at: string | number | null | undefined): string | undefined => (at === null || at === undefined || at === '' ? undefined : new Date(at).toISOString());

export const pairs = (record: Record<string, unknown> | null | undefined): string =>
  Object.entries(record ?? {})
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(', ') || '—';

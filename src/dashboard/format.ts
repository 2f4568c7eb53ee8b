/** How values read on the page: short SHAs, relative times, labels as k=v. */

export const shortSha = (sha: string | null | undefined): string => (sha ? sha.slice(0, 10) : '—');

/** "12 s ago", "3 min ago", …; the full time goes in the element's title. */
export function ago(at: string | number | null | undefined, now = Date.now()): string {
  if (at === null || at === undefined || at === '') return '—';
  const t = typeof at === 'number' ? at : Date.parse(at);
  if (Number.isNaN(t)) return String(at);
  const s = Math.round((now - t) / 1000);
  return s < 1 ? 'just now' : `${duration(s)} ago`;
}

export const isoOf = (at: string | number | null | undefined): string | undefined => (at === null || at === undefined || at === '' ? undefined : new Date(at).toISOString());

export const pairs = (record: Record<string, unknown> | null | undefined): string =>
  Object.entries(record ?? {})
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(', ') || '—';

export const gb = (bytes: number): string => (bytes / 1024 ** 3).toFixed(1);

/** Seconds as the largest whole unit: "40 s", "12 min", "5 h", "3 d". */
export function duration(seconds: number): string {
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86_400)} d`;
}

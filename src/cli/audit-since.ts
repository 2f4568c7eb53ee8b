import { InvalidArgumentError } from 'commander';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^([0-9]{1,9})([smhd])$/;
/** A date, or a date and time with a zone (Z or ±hh:mm): what the API's `since` takes too. */
const ISO = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** `--since`: an ISO time (2026-12-01T10:00:00Z, 2026-12-01) or a duration back from `now` (90s, 30m, 1h, 7d), as ms. */
export function parseSince(value: string, now: number): number {
  const duration = DURATION.exec(value);
  if (duration) return now - Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS];
  const at = ISO.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(at)) throw new InvalidArgumentError('expected an ISO time with its zone (2026-12-01T10:00:00Z), a date (2026-12-01), or a duration back from now (90s, 30m, 1h, 7d)');
  return at;
}

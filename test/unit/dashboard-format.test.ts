import { describe, expect, it } from 'vitest';
import { ago, duration, pairs, shortSha } from '../../src/dashboard/format.js';

describe("the dashboard's formats", () => {
  it('says how long ago in the largest whole unit, and what it cannot read as it is', () => {
    const now = Date.parse('2026-12-01T12:00:00Z');
    expect(ago('2026-12-01T12:00:00Z', now)).toBe('just now');
    expect(ago('2026-12-01T12:00:05Z', now)).toBe('just now');
    expect(ago('2026-12-01T11:59:18Z', now)).toBe('42 s ago');
    expect(ago('2026-12-01T11:48:00Z', now)).toBe('12 min ago');
    expect(ago('2026-12-01T07:00:00Z', now)).toBe('5 h ago');
    expect(ago('2026-11-28T12:00:00Z', now)).toBe('3 d ago');
    expect(ago(null, now)).toBe('—');
    expect(ago('not a time', now)).toBe('not a time');
    expect(duration(59.9)).toBe('59 s');
  });

  it('shortens SHAs and writes labels as k=v', () => {
    expect(shortSha('0123456789abcdef0123456789abcdef01234567')).toBe('0123456789');
    expect(shortSha(null)).toBe('—');
    expect(pairs({ env: 'production', zone: 'lab' })).toBe('env=production, zone=lab');
    expect(pairs({})).toBe('—');
  });
});

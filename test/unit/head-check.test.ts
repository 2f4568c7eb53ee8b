import { describe, expect, it } from 'vitest';
import { HEAD_CLOCK_TOLERANCE_MS, refuseHead } from '../../src/shared/head-check.js';
import { headTopic } from '../../src/shared/topics.js';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const head = (receivedAt = '2026-06-01T12:00:00Z') => ({ repo: 'acme/web', ref: 'refs/heads/main', receivedAt });

describe('refuseHead', () => {
  it('takes a head on its own topic, dated now or in the past, or a little ahead', () => {
    const topic = headTopic('acme/web', 'refs/heads/main');
    expect(refuseHead(topic, head(), NOW)).toBeNull();
    expect(refuseHead(topic, head('2020-01-01T00:00:00Z'), NOW)).toBeNull();
    expect(refuseHead(topic, head(new Date(NOW + HEAD_CLOCK_TOLERANCE_MS).toISOString()), NOW)).toBeNull();
  });

  it('refuses a head on another ref or repo topic', () => {
    expect(refuseHead(headTopic('acme/web', 'refs/heads/extra'), head(), NOW)).toMatch(/belongs on pushfleet\/heads\/acme\/web\/refs%2Fheads%2Fmain/);
    expect(refuseHead(headTopic('acme/api', 'refs/heads/main'), head(), NOW)).toMatch(/not on pushfleet\/heads\/acme\/api/);
  });

  it('refuses a head dated beyond the clock tolerance', () => {
    const topic = headTopic('acme/web', 'refs/heads/main');
    expect(refuseHead(topic, head(new Date(NOW + HEAD_CLOCK_TOLERANCE_MS + 1000).toISOString()), NOW)).toMatch(/301 s in the future/);
    expect(refuseHead(topic, head('9999-01-01T00:00:00Z'), NOW)).toMatch(/dated 9999/);
  });
});

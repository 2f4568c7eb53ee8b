import { describe, expect, it } from 'vitest';
import { parseSince } from '../../src/cli/audit-since.js';
import { apiAction } from '../../src/hub/api/audit-actions.js';
import { HubConfig } from '../../src/hub/config.js';

describe('apiAction', () => {
  it('names the API actions as the MQTT ones are named, and any other by its method and path', () => {
    expect(apiAction('POST', '/rollouts/web.prod.0123456789ab/pause', undefined)).toEqual({ action: 'rollout.pause', target: 'web.prod.0123456789ab' });
    expect(apiAction('POST', '/environments/prod/freeze', undefined)).toEqual({ action: 'environment.freeze', target: 'prod' });
    expect(apiAction('POST', '/agents/web-1/apps/site/retry', undefined)).toEqual({ action: 'app.retry', target: 'web-1/site' });
    expect(apiAction('POST', '/agents/web%2D1/apps/site/retry', undefined)).toEqual({ action: 'app.retry', target: 'web-1/site' });
    // No route serves it (answered 404), so it gets no action name of its own.
    expect(apiAction('POST', '/agents/web-1/apps/site/pin', undefined)).toEqual({ action: 'POST /api/v1/agents/web-1/apps/site/pin', target: null });
    expect(apiAction('POST', '/services', { name: 'sensor-1' })).toEqual({ action: 'service.add', target: 'sensor-1' });
    expect(apiAction('POST', '/services', 'not an object')).toEqual({ action: 'service.add', target: null });
    expect(apiAction('DELETE', '/services/sensor-1', undefined)).toEqual({ action: 'service.remove', target: 'sensor-1' });
    expect(apiAction('POST', '/rollouts/%E0%A4%A/pause', undefined)).toEqual({ action: 'rollout.pause', target: '%E0%A4%A' });
    expect(apiAction('PUT', '/something/new', undefined)).toEqual({ action: 'PUT /api/v1/something/new', target: null });
  });
});

describe('parseSince', () => {
  const now = Date.parse('2026-12-01T12:00:00Z');
  it('takes an ISO time with its zone, a date, or a duration back from now', () => {
    expect(parseSince('2026-12-01T10:00:00Z', now)).toBe(Date.parse('2026-12-01T10:00:00Z'));
    expect(parseSince('2026-12-01T10:00:00.5+01:00', now)).toBe(Date.parse('2026-12-01T09:00:00.500Z'));
    expect(parseSince('2026-11-30', now)).toBe(Date.parse('2026-11-30T00:00:00Z'));
    expect(parseSince('90s', now)).toBe(now - 90_000);
    expect(parseSince('30m', now)).toBe(now - 1_800_000);
    expect(parseSince('1h', now)).toBe(now - 3_600_000);
    expect(parseSince('7d', now)).toBe(now - 7 * 86_400_000);
  });
  it('refuses a time without its zone (it would depend on the machine), and anything else', () => {
    for (const bad of ['2026-12-01T10:00:00', 'yesterday', '1w', '-1h', '', '2026-13-01']) expect(() => parseSince(bad, now), bad).toThrow(/expected an ISO time/);
  });
});

describe('audit config', () => {
  it('has sane defaults and refuses bounds that would keep nothing or everything', () => {
    expect(HubConfig.parse({}).audit).toEqual({ maxEntries: 100_000, maxAgeDays: 90 });
    for (const audit of [{ maxEntries: 0 }, { maxEntries: 1.5 }, { maxEntries: 1e9 }, { maxAgeDays: 0 }, { maxAgeDays: 10_000 }, { keep: 1 }]) {
      expect(HubConfig.safeParse({ audit }).success, JSON.stringify(audit)).toBe(false);
    }
  });
});

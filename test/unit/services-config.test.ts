import { describe, expect, it } from 'vitest';
import { machineSettings, ServicesConfig } from '../../src/hub/engines/services/config.js';
import { validateConfig } from '../../src/shared/config-file.js';

describe('engines.services config', () => {
  it('defaults to the documented timing and restart policy', () => {
    expect(machineSettings(ServicesConfig.parse({}))).toEqual({
      renewMs: 500,
      leaseMs: 1500,
      driftMs: 200,
      heartbeatMissMs: 1500,
      restart: { attempts: 3, intervalMs: 300_000, delayMs: 1000, factor: 2, maxDelayMs: 30_000, rescheduleDelayMs: 5000, rescheduleMaxDelayMs: 300_000 },
      historyLimit: 20,
    });
  });

  it('names the key of a lease that a lost renewal would end, and of unknown keys', () => {
    const bad = ServicesConfig.safeParse({ renewMs: 1000, leaseMs: 1500, heartbeatMissMs: 1000, restart: { attempt: 2 } });
    expect(bad.success).toBe(false);
    const issues = bad.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues.join('\n')).toMatch(/restart: .*attempt/);
    const timing = ServicesConfig.safeParse({ renewMs: 1000, leaseMs: 1500, heartbeatMissMs: 1000 });
    expect(timing.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'leaseMs: leaseMs must be at least twice renewMs',
      'heartbeatMissMs: heartbeatMissMs must be at least twice renewMs',
    ]);
  });

  it('keeps state in SQLite unless postgresUrl is set', () => {
    expect(ServicesConfig.parse({}).postgresUrl).toBeUndefined();
    expect(ServicesConfig.parse({ postgresUrl: 'postgres://pushfleet@db:5432/pushfleet' }).postgresUrl).toBe('postgres://pushfleet@db:5432/pushfleet');
    expect(ServicesConfig.parse({ postgresUrl: 'postgresql://db/pushfleet' }).postgresUrl).toBe('postgresql://db/pushfleet');
  });

  it('names the key of a URL that is not PostgreSQL, and of a key it does not know', () => {
    expect(() => validateConfig(ServicesConfig, { postgresUrl: 'mysql://db/x' }, 'hub.yaml')).toThrow(/postgresUrl.*use a postgres:\/\/user@host:port\/database URL/);
    expect(() => validateConfig(ServicesConfig, { postgresURL: 'postgres://db/x' }, 'hub.yaml')).toThrow(/postgresURL/);
  });
});

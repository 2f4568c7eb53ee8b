import { describe, expect, it } from 'vitest';
import { ServicesConfig } from '../../src/hub/engines/services/config.js';
import { validateConfig } from '../../src/shared/config-file.js';

describe('services config', () => {
  it('keeps state in SQLite unless postgresUrl is set', () => {
    expect(ServicesConfig.parse({})).toEqual({ enabled: true });
    expect(ServicesConfig.parse({ postgresUrl: 'postgres://pushfleet@db:5432/pushfleet' }).postgresUrl).toBe('postgres://pushfleet@db:5432/pushfleet');
    expect(ServicesConfig.parse({ postgresUrl: 'postgresql://db/pushfleet' }).postgresUrl).toBe('postgresql://db/pushfleet');
  });

  it('names the key of a URL that is not PostgreSQL, and of a key it does not know', () => {
    expect(() => validateConfig(ServicesConfig, { postgresUrl: 'mysql://db/x' }, 'hub.yaml')).toThrow(/postgresUrl.*use a postgres:\/\/user@host:port\/database URL/);
    expect(() => validateConfig(ServicesConfig, { postgresURL: 'postgres://db/x' }, 'hub.yaml')).toThrow(/postgresURL/);
  });
});

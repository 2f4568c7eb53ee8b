import { describe, expect, it } from 'vitest';
import { HubConfig } from '../../src/hub/config.js';
import { channelOptionsResolver, SemaphoreConfig } from '../../src/hub/engines/semaphore/config.js';
import { ConfigError, validateConfig } from '../../src/shared/config-file.js';

describe('semaphore config', () => {
  it('defaults like coordinosaur: prefix coordinosaur, one job at a time, no offset, no quotas', () => {
    const hub = HubConfig.parse({});
    expect(hub.engines.semaphore).toMatchObject({ enabled: true, prefix: 'coordinosaur', maxConcurrentJobs: 1, timeoutOffset: 0, quotasPerInterval: {}, channels: {} });
  });

  it('merges every matching pattern in order, later keys winning, matched at the start like re.match', () => {
    const resolve = channelOptionsResolver(
      SemaphoreConfig.parse({
        maxConcurrentJobs: 1,
        quotasPerInterval: { 60: { name: 'minute', limit: 15, log: 'v' }, 3600: { name: 'hour', limit: 0 } },
        channels: {
          'test(.+)': { timeoutOffset: 1, maxConcurrentJobs: 2 },
          'test-big': { maxConcurrentJobs: 50, quotasPerInterval: {} },
        },
      }),
    );
    expect(resolve('other')).toEqual({ maxConcurrentJobs: 1, timeoutOffset: 0, quotas: [{ seconds: 60, name: 'minute', limit: 15 }] });
    expect(resolve('test-a')).toEqual({ maxConcurrentJobs: 2, timeoutOffset: 1, quotas: [{ seconds: 60, name: 'minute', limit: 15 }] });
    expect(resolve('test-big')).toEqual({ maxConcurrentJobs: 50, timeoutOffset: 1, quotas: [] });
    expect(resolve('my-test-a').maxConcurrentJobs).toBe(1);
  });

  it('names the offending key of a bad config', () => {
    const bad = {
      engines: {
        semaphore: {
          prefix: '/coordinosaur',
          maxConcurrentJobs: -1,
          quotasPerInterval: { minute: { name: 'm', limit: 1 } },
          channels: { 'test(': {} },
        },
      },
    };
    let message = '';
    try {
      validateConfig(HubConfig, bad, 'hub.yaml');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toContain('engines.semaphore.prefix');
    expect(message).toContain('engines.semaphore.maxConcurrentJobs');
    expect(message).toContain('engines.semaphore.quotasPerInterval.minute');
    expect(message).toContain('engines.semaphore.channels.test(');
  });
});

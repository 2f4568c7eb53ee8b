import { describe, expect, it } from 'vitest';
import { redactUrl, splitCredentials } from '../../src/shared/mqtt-url.js';

describe('broker URL credentials', () => {
  it('are taken out whole, a colon in the password included', () => {
    expect(splitCredentials('mqtt://web-1:pa%3As%40s@hub:1883')).toEqual({ url: 'mqtt://hub:1883', username: 'web-1', password: 'pa:s@s' });
    expect(splitCredentials('mqtts://op@hub:8883')).toEqual({ url: 'mqtts://hub:8883', username: 'op' });
    expect(splitCredentials('mqtt://hub:1883')).toEqual({ url: 'mqtt://hub:1883' });
  });
  it('never show the password', () => {
    expect(redactUrl('mqtt://web-1:s3cret@hub:1883')).toBe('mqtt://web-1:***@hub:1883');
    expect(redactUrl('mqtt://hub:1883')).toBe('mqtt://hub:1883');
    expect(redactUrl('not a url //user:s3cret@x')).not.toContain('s3cret');
  });
});

import { describe, expect, it } from 'vitest';
import { clientOptions, reconnectPeriodMs } from '../../src/shared/mqtt-connection.js';

describe('reconnect jitter', () => {
  it('waits between 0.5 and 2.5 s, drawn anew for each client', () => {
    expect(reconnectPeriodMs(() => 0)).toBe(500);
    expect(reconnectPeriodMs(() => 0.999_999)).toBe(2500);
    const periods = Array.from({ length: 200 }, () => clientOptions({ url: 'mqtt://127.0.0.1:1', keepalive: 30 }).reconnectPeriod!);
    expect(Math.min(...periods)).toBeGreaterThanOrEqual(500);
    expect(Math.max(...periods)).toBeLessThanOrEqual(2500);
    // A fleet that lost its broker at once must not come back in the same instant.
    expect(new Set(periods).size).toBeGreaterThan(100);
  });
});

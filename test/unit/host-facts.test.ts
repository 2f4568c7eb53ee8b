import { describe, expect, it } from 'vitest';
import { cpuLoadPercent, osName, readHostFacts } from '../../agent/host-facts.js';
import { Heartbeat } from '../../src/shared/messages.js';

describe('host facts', () => {
  it('names the OS from os-release as NAME and VERSION_ID, quoted or not', () => {
    expect(osName('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n')).toBe('Debian GNU/Linux 12');
    expect(osName("NAME=Alpine\nVERSION_ID='3.20.1'\n")).toBe('Alpine 3.20.1');
    expect(osName('NAME="Arch Linux"\n')).toBe('Arch Linux');
    expect(osName('')).toBe('');
  });

  it('takes the CPU load from the counters between two samples', () => {
    expect(cpuLoadPercent({ busy: 100, total: 1000 }, { busy: 350, total: 2000 })).toBe(25);
    expect(cpuLoadPercent({ busy: 0, total: 0 }, { busy: 1, total: 3 })).toBe(33.3);
    expect(cpuLoadPercent({ busy: 5, total: 10 }, { busy: 5, total: 10 })).toBe(0);
  });

  it('reads facts that fit the heartbeat message', async () => {
    const host = await readHostFacts();
    const beat = Heartbeat.safeParse({ v: 1, agent: 'a', at: new Date().toISOString(), host });
    expect(beat.success, JSON.stringify(beat.error?.issues)).toBe(true);
    expect(host.memTotalBytes).toBeGreaterThan(host.memUsedBytes);
    expect(host.cpuLoadPercent).toBeGreaterThanOrEqual(0);
    expect(host.cpuLoadPercent).toBeLessThanOrEqual(100);
  });
});

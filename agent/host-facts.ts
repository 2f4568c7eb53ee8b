import { loadavg } from 'node:os';
import si from 'systeminformation';
import type { Heartbeat } from '../src/shared/messages.js';

/** Host facts for the heartbeat, read with systeminformation. */
export async function readHostFacts(): Promise<Heartbeat['host']> {
  const [os, load, mem, time] = await Promise.all([si.osInfo(), si.currentLoad(), si.mem(), Promise.resolve(si.time())]);
  return {
    hostname: os.hostname,
    os: `${os.distro} ${os.release}`.trim(),
    kernel: os.kernel,
    arch: os.arch,
    cpuLoadPercent: Math.round(load.currentLoad * 10) / 10,
    loadAvg: loadavg().map((n) => Math.round(n * 100) / 100),
    memTotalBytes: mem.total,
    memUsedBytes: mem.active,
    uptimeSeconds: Math.round(Number(time.uptime)),
  };
}

import { readFile } from 'node:fs/promises';
import { arch, cpus, freemem, hostname, loadavg, release, totalmem, uptime } from 'node:os';
import type { Heartbeat } from '../src/shared/messages.js';

/** CPU time counters summed over all cores (ms), as os.cpus() reports them. */
export type CpuTimes = { busy: number; total: number };

/** "NAME VERSION_ID" from /etc/os-release text (e.g. "Debian GNU/Linux 12"); "" when absent. */
export function osName(osRelease: string): string {
  const field = (key: string) => {
    const m = new RegExp(`^${key}=(.*)$`, 'm').exec(osRelease);
    return (m?.[1] ?? '').trim().replace(/^(["'])(.*)\1$/, '$2');
  };
  return `${field('NAME')} ${field('VERSION_ID')}`.trim();
}

/** Busy share of the CPU time between two samples, in percent with one decimal (0 when no time passed). */
export function cpuLoadPercent(before: CpuTimes, after: CpuTimes): number {
  const total = after.total - before.total;
  return total > 0 ? Math.round(((after.busy - before.busy) / total) * 1000) / 10 : 0;
}

const cpuTimes = (): CpuTimes =>
  cpus().reduce(
    (acc, { times: t }) => {
      const busy = t.user + t.nice + t.sys + t.irq;
      return { busy: acc.busy + busy, total: acc.total + busy + t.idle };
    },
    { busy: 0, total: 0 },
  );

/** Since boot for the first heartbeat, then since the one before. */
let lastCpu: CpuTimes = { busy: 0, total: 0 };

/**
 * Host facts for the heartbeat, from node:os and /etc/os-release: a few syscalls and one small
 * asynchronous read, so a heartbeat neither blocks the event loop (which times orchestrator
 * starts) nor spawns anything.
 */
export async function readHostFacts(): Promise<Heartbeat['host']> {
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const now = cpuTimes();
  const load = cpuLoadPercent(lastCpu, now);
  lastCpu = now;
  return {
    hostname: hostname(),
    os: osName(osRelease),
    kernel: release(),
    arch: arch(),
    cpuLoadPercent: load,
    loadAvg: loadavg().map((n) => Math.round(n * 100) / 100),
    memTotalBytes: totalmem(),
    // freemem() is MemAvailable: what is used is what could not be handed out without swapping.
    memUsedBytes: totalmem() - freemem(),
    uptimeSeconds: Math.round(uptime()),
  };
}

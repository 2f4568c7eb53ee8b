import { readdirSync, readFileSync } from 'node:fs';
import type { Logger } from '../src/shared/logger.js';
import type { RunningGroup } from './journal.js';

/** The fields of /proc/<pid>/stat this file needs. */
export type ProcStat = { pid: number; pgrp: number; startTime: number; zombie: boolean };

/**
 * The live members of the recorded group, or none when it is gone or the id now belongs to
 * another group. The kernel does not reuse a pid while a group of that id exists, so: a leader
 * with another start time is a later process; without a leader, members older than the recorded
 * leader cannot be its children. Another boot means every process of the record is gone. Zombies
 * have exited already.
 */
export function liveMembers(rec: Pick<RunningGroup, 'pgid' | 'startTime' | 'bootId'>, bootId: string, procs: readonly ProcStat[]): number[] {
  if (bootId !== rec.bootId) return [];
  const leader = procs.find((p) => p.pid === rec.pgid);
  if (leader && leader.startTime !== rec.startTime) return [];
  const members = procs.filter((p) => p.pgrp === rec.pgid && !p.zombie);
  if (!leader && members.some((p) => p.startTime < rec.startTime)) return [];
  return members.map((p) => p.pid);
}

/** Parses /proc/<pid>/stat; the command name (field 2) may hold spaces and parentheses. */
export function parseStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  const pid = Number.parseInt(text, 10);
  const rest = text.slice(close + 2).split(' ');
  if (close < 0 || !Number.isInteger(pid) || rest.length < 20) return null;
  return { pid, pgrp: Number(rest[2]), startTime: Number(rest[19]), zombie: rest[0] === 'Z' };
}

const readStat = (pid: number | string): ProcStat | null => {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null; // gone
  }
};

const allProcs = (): ProcStat[] => readdirSync('/proc').filter((n) => /^\d+$/.test(n)).flatMap((n) => readStat(n) ?? []);

export const bootId = (): string => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

/** A recorded process group; `step` names what it runs (an update step, a job action). */
export type ProcessGroup<S extends string = string> = Omit<RunningGroup, 'step'> & { step: S };

/** What identifies the group a just-started process leads (it was started detached: pgid = pid). */
export function describeGroup<S extends string>(pid: number, step: S, argv0: string): ProcessGroup<S> {
  const stat = readStat(pid);
  if (!stat) throw new Error(`process ${pid} of ${step} vanished before it could be recorded`);
  return { pgid: pid, startTime: stat.startTime, bootId: bootId(), step, argv0 };
}

const signalGroup = (pgid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pgid, signal);
  } catch {
    // gone meanwhile
  }
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export type GroupLimits = { graceMs: number; giveUpMs: number; pollMs: number };
const LIMITS: GroupLimits = { graceMs: 2000, giveUpMs: 10_000, pollMs: 50 };

/**
 * Stops what a killed agent's step left running (recorded in the journal), before anything else
 * runs for the app (or job): SIGTERM to its group, SIGKILL after a grace period, and waits until no member
 * is left. Returns what was done, for the log and the interrupted report; null if nothing was left.
 */
export async function stopLeftover(rec: ProcessGroup, log: Logger, limits: GroupLimits = LIMITS): Promise<string | null> {
  const members = () => liveMembers(rec, bootId(), allProcs());
  const found = members();
  if (found.length === 0) return null;
  const what = `${rec.step} (${rec.argv0}, process group ${rec.pgid}, ${found.length} process${found.length === 1 ? '' : 'es'})`;
  log.warn({ pgid: rec.pgid, step: rec.step, pids: found }, 'a step of the stopped run is still running: terminating it');
  signalGroup(rec.pgid, 'SIGTERM');
  const started = Date.now();
  let killed = false;
  while (members().length > 0) {
    const waited = Date.now() - started;
    if (waited >= limits.giveUpMs) throw new Error(`${what} of the stopped run is still running after SIGKILL; not starting anything in its place`);
    if (!killed && waited >= limits.graceMs) {
      killed = true;
      signalGroup(rec.pgid, 'SIGKILL');
    }
    await sleep(limits.pollMs);
  }
  const how = killed ? 'killed (SIGKILL after SIGTERM)' : 'terminated (SIGTERM)';
  log.warn({ pgid: rec.pgid, step: rec.step }, `left-over step ${how}`);
  return `${what} was still running; ${how} before recovery`;
}

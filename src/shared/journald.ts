import { fstatSync } from 'node:fs';

/**
 * Whether fd (stdout) is the journal stream systemd gave this service: JOURNAL_STREAM is
 * "<device>:<inode>" of that stream, and a child whose stdout was redirected elsewhere inherits the
 * variable, so the stream itself is compared (sd_journal_stream_fd(3), systemd.exec(5)).
 */
export function stdoutIsJournal(env: NodeJS.ProcessEnv, fd = 1): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

/** syslog priority of a pino level: fatal 2 (crit), error 3, warn 4, info 6, debug and trace 7. */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/**
 * A pino line with the `<N>` prefix of sd-daemon(3): journald (SyslogLevelPrefix=yes, the default)
 * takes N as the entry's PRIORITY and strips it, so the journal keeps the plain JSON line and
 * `journalctl -p err` finds the errors.
 */
export function withPriorityPrefix(line: string): string {
  const level = /^\{"level":(\d+)/.exec(line);
  return level ? `<${syslogPriority(Number(level[1]))}>${line}` : line;
}

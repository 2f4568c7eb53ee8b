import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { stdoutIsJournal, withPriorityPrefix } from './journald.js';

export type { Logger };

/** `scheme://user:password@host…` → `scheme://user:***@host…`, wherever it appears in the text. */
export function redactUrlPassword(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*:)[^\s/?#@]+@/gi, '$1***@');
}

/** Strings in a log line's fields (plain objects and arrays, a few levels deep) with URL passwords redacted. */
function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactUrlPassword(value);
  if (depth > 3 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrub(v, depth + 1)]));
}

/**
 * One JSON line per event; pretty-printed when a person is watching a terminal. A safety net for
 * secrets, whatever the call site logs: fields named password, secret or token are censored, and
 * a URL's password (mqtt://user:pass@host, an app's output naming a remote with a token) is
 * redacted in every field and message. Under systemd, with stdout the journal's stream, each line
 * carries its syslog priority as a `<N>` prefix (journald.ts).
 */
export function createLogger(name: string, level: LevelWithSilent = 'info', destination?: DestinationStream): Logger {
  const pretty = !destination && process.stdout.isTTY && !process.env.PUSHFLEET_LOG_JSON;
  const journal = !destination && !pretty && stdoutIsJournal(process.env);
  const options = {
    name,
    level,
    redact: { paths: ['password', 'secret', 'token', '*.password', '*.secret', '*.token'], censor: '[redacted]' },
    formatters: { log: (fields: Record<string, unknown>) => scrub(fields) as Record<string, unknown> },
    hooks: {
      ...(journal && { streamWrite: withPriorityPrefix }),
      logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...a: Parameters<Logger['info']>) => void) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? redactUrlPassword(a) : a)) as Parameters<Logger['info']>);
      },
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { destination: 1 } } } : {}),
  };
  return destination ? pino(options, destination) : pino(options);
}

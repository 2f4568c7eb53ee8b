import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** One JSON line per event; pretty-printed when a person is watching a terminal. */
export function createLogger(name: string, level: LevelWithSilent = 'info'): Logger {
  const pretty = process.stdout.isTTY && !process.env.PUSHFLEET_LOG_JSON;
  return pino({
    name,
    level,
    ...(pretty ? { transport: { target: 'pino-pretty', options: { destination: 1 } } } : {}),
  });
}

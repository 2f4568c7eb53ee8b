import type { Clock } from '../engine.js';

export type Alarm = { cancel(): void };

/** setTimeout's ceiling; a longer delay would fire after 1 ms, so long alarms are chained. */
const MAX_DELAY = 2 ** 31 - 1;

/** Calls `fn` once at clock time `at` (at once if it is past), however far away `at` is. */
export function alarmAt(clock: Clock, at: number, fn: () => void): Alarm {
  let handle: unknown;
  const arm = () => {
    const delay = at - clock.now();
    handle = delay > MAX_DELAY ? clock.setTimeout(arm, MAX_DELAY) : clock.setTimeout(fn, Math.max(0, delay));
  };
  arm();
  return { cancel: () => clock.clearTimeout(handle) };
}

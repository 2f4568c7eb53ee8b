import type { Clock } from '../../src/hub/engines/engine.js';

/** Timers the test runs by hand; a timer set while others fire runs in the same advance if due. */
export class ManualClock implements Clock {
  private timers = new Map<number, { at: number; fn: () => void }>();
  private next = 0;

  constructor(public time = 0) {}

  now = () => this.time;
  setTimeout = (fn: () => void, ms: number) => {
    this.timers.set(++this.next, { at: this.time + ms, fn });
    return this.next;
  };
  clearTimeout = (h: unknown) => void this.timers.delete(h as number);

  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].fn();
    }
    this.time = end;
  }
}

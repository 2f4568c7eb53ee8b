import type { LeaseClock } from './lease-holder.js';
import type { CopyIds } from './service-supervisor.js';

/** A copy's tail is published at most this often while it changes. */
export const OUTPUT_EVERY_MS = 2000;

type Tail = { ids: CopyIds; text: string; publishedAt: number; timer: unknown };

/**
 * The last `maxChars` of each running copy's stdout and stderr, published at most every
 * OUTPUT_EVERY_MS while it changes (so a chatty service costs the broker one message per 2 s) and
 * once more at the copy's end. Each copy starts a tail of its own.
 */
export class OutputTails {
  private readonly tails = new Map<string, Tail>();

  constructor(private readonly deps: { clock: LeaseClock; maxChars: number; publish(ids: CopyIds, output: string): void }) {}

  line(ids: CopyIds, line: string): void {
    let tail = this.tails.get(ids.name);
    if (!tail || !sameCopy(tail.ids, ids)) {
      if (tail) this.deps.clock.clearTimeout(tail.timer);
      tail = { ids, text: '', publishedAt: -Infinity, timer: undefined };
      this.tails.set(ids.name, tail);
    }
    tail.text = (tail.text + line + '\n').slice(-this.deps.maxChars);
    if (tail.timer !== undefined) return;
    const wait = Math.max(0, tail.publishedAt + OUTPUT_EVERY_MS - this.deps.clock.now());
    const due = tail;
    tail.timer = this.deps.clock.setTimeout(() => {
      due.timer = undefined;
      if (this.tails.get(due.ids.name) === due) this.publish(due);
    }, wait);
  }

  /** The copy ended: its whole tail now (empty when it wrote nothing), and it is forgotten. */
  ended(ids: CopyIds): void {
    const tail = this.tails.get(ids.name);
    const mine = tail && sameCopy(tail.ids, ids) ? tail : undefined;
    if (mine) {
      this.deps.clock.clearTimeout(mine.timer);
      this.tails.delete(ids.name);
    }
    this.deps.publish(ids, mine?.text ?? '');
  }

  private publish(tail: Tail): void {
    tail.publishedAt = this.deps.clock.now();
    this.deps.publish(tail.ids, tail.text);
  }
}

const sameCopy = (a: CopyIds, b: CopyIds) => a.generation === b.generation && a.restarts === b.restarts;

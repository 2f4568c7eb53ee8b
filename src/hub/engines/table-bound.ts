import type { Logger } from '../../shared/logger.js';
import type { Clock } from './engine.js';

/** How often at most a full table says so; what it refused meanwhile is counted in the next line. */
const LOG_EVERY_MS = 60_000;

/**
 * The bound of one table the hub fills from messages other clients publish: past `limit` entries
 * a new one is refused, never stored, so a flood costs neither memory nor disk. The refusal is
 * logged at once, then at most once a minute with the count refused since, so a flood cannot
 * flood the log either.
 */
export class TableBound {
  private refused = 0;
  private loggedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly deps: { log: Logger; clock: Clock },
    /** What the table holds, for the log line ("agents of the rollouts engine"). */
    private readonly table: string,
    /** The config key that raises the limit. */
    private readonly key: string,
    readonly limit: number,
    /** What happens past the limit, for the log line. */
    private readonly past = 'new entries refused',
  ) {}

  /** Whether a new entry fits beside `size` entries; if not, counts it and maybe logs that. */
  admits(size: number, entry: string): boolean {
    if (size < this.limit) return true;
    this.refused++;
    const now = this.deps.clock.now();
    if (now - this.loggedAt >= LOG_EVERY_MS) {
      this.deps.log.warn({ table: this.table, limit: this.limit, refused: this.refused, last: entry.slice(0, 200) }, `${this.table}: full at ${this.limit}, ${this.past} (${this.key} raises it)`);
      this.loggedAt = now;
      this.refused = 0;
    }
    return false;
  }

  /** For an answer to whoever was refused. */
  get full(): string {
    return `${this.table}: full at ${this.limit} (${this.key})`;
  }
}

/**
 * How long to hold the answer to a login from an address that failed before: nothing for the
 * first few mistakes, then doubling up to a ceiling, so a guesser gets a handful of tries a
 * minute per address while a person who mistyped once does not notice. Forgotten after a quiet
 * spell; bounded in memory (the oldest address goes first).
 */
export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; last: number }>();

  constructor(
    private readonly opts = { free: 3, baseMs: 250, maxMs: 10_000, forgetMs: 600_000, maxAddresses: 10_000 },
  ) {}

  delayMs(address: string, now: number): number {
    const entry = this.current(address, now);
    return entry ? this.delayFor(entry.count) : 0;
  }

  /** How long until the address's last failure has waited out its delay: the HTTP API answers 429 until then. */
  retryInMs(address: string, now: number): number {
    const entry = this.current(address, now);
    return entry ? Math.max(0, entry.last + this.delayFor(entry.count) - now) : 0;
  }

  failed(address: string, now: number): number {
    const count = (this.current(address, now)?.count ?? 0) + 1;
    this.failures.delete(address);
    this.failures.set(address, { count, last: now });
    if (this.failures.size > this.opts.maxAddresses) this.failures.delete(this.failures.keys().next().value!);
    return count;
  }

  succeeded(address: string): void {
    this.failures.delete(address);
  }

  private delayFor(count: number): number {
    return count < this.opts.free ? 0 : Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** (count - this.opts.free));
  }

  private current(address: string, now: number): { count: number; last: number } | undefined {
    const entry = this.failures.get(address);
    if (entry && now - entry.last > this.opts.forgetMs) {
      this.failures.delete(address);
      return undefined;
    }
    return entry;
  }
}

/**
 * What a failed broker login counts against. A password pushfleet generated (192 random bits)
 * cannot be guessed, so its failures slow only that name from that address: a fleet behind one
 * NAT, or the fleet simulator on loopback, is not held up by one agent with a stale password
 * retrying every few seconds. Chosen passwords and unknown names count against the address, as
 * a guesser would try them.
 */
export function loginThrottleKey(address: string, username: string, hash: { alg: string } | undefined): string {
  return hash?.alg === 'hmac-sha256' ? `${address}\u0000${username}` : address;
}

/**
 * One log line per key per interval: a client refused in a reconnect loop, or a flood, does not
 * fill the log; the line that gets through says how many were left out since the last one.
 */
export class LogLimit {
  private readonly seen = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs = 10_000,
    private readonly maxKeys = 10_000,
  ) {}

  /** The number of lines left out before this one, or null when this one is to be left out too. */
  allow(key: string, now: number): number | null {
    const entry = this.seen.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return null;
    }
    this.seen.delete(key);
    this.seen.set(key, { at: now, suppressed: 0 });
    if (this.seen.size > this.maxKeys) this.seen.delete(this.seen.keys().next().value!);
    return entry?.suppressed ?? 0;
  }
}

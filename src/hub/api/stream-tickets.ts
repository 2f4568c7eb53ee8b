import { createHash, randomBytes } from 'node:crypto';

export type TicketHolder = { name: string; role: 'viewer' | 'operator' };

export type StreamTicketsOptions = { ttlMs: number; max: number; now: () => number };

export const STREAM_TICKET_DEFAULTS = { ttlMs: 30_000, max: 1000 };

/**
 * Tickets for the event stream: a browser's EventSource cannot send an Authorization header, and
 * a token in the stream's URL would end up in logs and history. A caller with a token asks for a
 * ticket (POST), then opens the stream with it in the URL: 32 random bytes, taken once, within
 * ttlMs. They are kept by their SHA-256, so looking one up leaks nothing of a live ticket through
 * timing; at most `max` are outstanding (the oldest goes first).
 */
export class StreamTickets {
  private readonly tickets = new Map<string, { holder: TicketHolder; until: number }>();

  constructor(private readonly opts: StreamTicketsOptions) {}

  issue(holder: TicketHolder): { ticket: string; expiresAt: string } {
    const now = this.opts.now();
    this.prune(now);
    if (this.tickets.size >= this.opts.max) this.tickets.delete(this.tickets.keys().next().value!);
    const ticket = randomBytes(32).toString('base64url');
    const until = now + this.opts.ttlMs;
    this.tickets.set(digest(ticket), { holder, until });
    return { ticket, expiresAt: new Date(until).toISOString() };
  }

  /** Who the ticket was issued to, once; undefined for an unknown, used or expired ticket. */
  redeem(ticket: string): TicketHolder | undefined {
    const key = digest(ticket);
    const entry = this.tickets.get(key);
    if (!entry) return undefined;
    this.tickets.delete(key);
    return entry.until > this.opts.now() ? entry.holder : undefined;
  }

  /** Tickets expire in the order they were issued (one ttl for all): drop from the oldest. */
  private prune(now: number): void {
    for (const [key, entry] of this.tickets) {
      if (entry.until > now) break;
      this.tickets.delete(key);
    }
  }
}

const digest = (ticket: string): string => createHash('sha256').update(ticket).digest('base64');

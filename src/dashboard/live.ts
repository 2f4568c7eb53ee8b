import { ApiFailure, type ApiClient, type Caller } from './api.js';

/** What the hub says changed: an area of its read models, and which item when it knows. */
export type Change = { area: string; id?: string };
export type LiveState = 'live' | 'reconnecting' | 'refused';

type Ticket = { ticket: string; caller: Caller };

/**
 * The hub's change notices (`GET /api/v1/events`, server-sent events). EventSource cannot send
 * an Authorization header, so each connection first gets a ticket (an authenticated POST): single
 * use, valid for seconds, so the URL that carries it (and may end up in a log) opens nothing
 * later. A dropped stream is opened again with a new ticket, after a growing pause, and the page
 * then reloads everything it shows, since notices sent meanwhile are lost.
 */
export class LiveStream {
  private source: EventSource | undefined;
  private retryMs = RETRY_MIN_MS;
  private timer: number | undefined;
  private closed = false;

  constructor(
    private readonly api: ApiClient,
    private readonly onChange: (change: Change | 'all') => void,
    private readonly onState: (state: LiveState, detail?: string) => void,
  ) {}

  /** Opens the first stream; rejects with the API's refusal (a wrong token is a 401 here). */
  async open(): Promise<Caller> {
    const { ticket, caller } = await this.api.post<Ticket>('/events/tickets');
    this.connect(ticket, false);
    return caller;
  }

  close(): void {
    this.closed = true;
    window.clearTimeout(this.timer);
    this.source?.close();
  }

  private connect(ticket: string, again: boolean): void {
    const source = new EventSource(`/api/v1/events?ticket=${encodeURIComponent(ticket)}`);
    this.source = source;
    source.addEventListener('open', () => {
      this.retryMs = RETRY_MIN_MS;
      this.onState('live');
      if (again) this.onChange('all');
    });
    source.addEventListener('changed', (event) => {
      const change = parseChange((event as MessageEvent<string>).data);
      if (change) this.onChange(change);
    });
    // EventSource would retry with the same URL, whose ticket is spent: this stream is done.
    source.addEventListener('error', () => {
      source.close();
      if (this.closed) return;
      this.onState('reconnecting');
      this.timer = window.setTimeout(() => void this.reopen(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    });
  }

  private async reopen(): Promise<void> {
    try {
      const { ticket } = await this.api.post<Ticket>('/events/tickets');
      if (!this.closed) this.connect(ticket, true);
    } catch (err) {
      if (err instanceof ApiFailure && (err.status === 401 || err.status === 403)) return this.onState('refused', err.message);
      this.onState('reconnecting', err instanceof Error ? err.message : String(err));
      this.timer = window.setTimeout(() => void this.reopen(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    }
  }
}

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

function parseChange(data: string): Change | undefined {
  try {
    const value = JSON.parse(data) as { area?: unknown; id?: unknown };
    if (typeof value.area !== 'string') return undefined;
    return typeof value.id === 'string' ? { area: value.area, id: value.id } : { area: value.area };
  } catch {
    return undefined;
  }
}

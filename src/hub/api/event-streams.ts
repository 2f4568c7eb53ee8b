/**
 * The open `GET /api/v1/events` streams and what is sent on them: each HubEvents notice,
 * coalesced over a short window (a rollout that changes ten times in 200 ms is one `changed`
 * event per stream), a comment every heartbeatMs so proxies and the hub's own idle-socket timeout
 * keep the connection, and bounds on the streams open at once, in all and per account. A stream whose client does not
 * read (its buffered bytes pass maxBufferedBytes) is ended: the page opens a new one and reloads.
 */
import type { HubArea, HubChange, HubEvents } from '../hub-events.js';

/** Where one stream's text goes (an HTTP response, in the route). */
export type StreamSink = {
  write(text: string): void;
  /** Bytes written but not yet taken by the client. */
  buffered(): number;
  end(): void;
};

export type EventStreamsOptions = {
  maxStreams: number;
  /** Streams of one account at once (a dashboard in each of its tabs), so one token cannot take them all. */
  maxPerOwner: number;
  coalesceMs: number;
  heartbeatMs: number;
  /** Past this many ids of one area in one window, one notice for the whole area goes out instead. */
  maxIdsPerArea: number;
  maxBufferedBytes: number;
  /** How long a client waits before reconnecting (the SSE `retry:` field). */
  retryMs: number;
};

export const EVENT_STREAM_DEFAULTS: EventStreamsOptions = { maxStreams: 64, maxPerOwner: 16, coalesceMs: 250, heartbeatMs: 15_000, maxIdsPerArea: 20, maxBufferedBytes: 256 * 1024, retryMs: 3000 };

type Timers = Pick<typeof globalThis, 'setTimeout' | 'clearTimeout' | 'setInterval' | 'clearInterval'>;

export class EventStreams {
  /** Each open stream, with the account it is for. */
  private readonly sinks = new Map<StreamSink, string>();
  /** Areas changed in this window: the ids named, or null when the whole area is to be reloaded. */
  private pending = new Map<HubArea, Set<string> | null>();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private readonly onChanged = ({ area, id }: HubChange) => this.notice(area, id);

  constructor(
    private readonly events: HubEvents,
    private readonly opts: EventStreamsOptions = EVENT_STREAM_DEFAULTS,
    private readonly timers: Timers = globalThis,
  ) {}

  start(): void {
    this.events.on('changed', this.onChanged);
    this.heartbeat = this.timers.setInterval(() => this.sendAll(': heartbeat\n\n'), this.opts.heartbeatMs);
    this.heartbeat.unref?.();
  }

  /** Ends every stream (so the HTTP server can close) and stops listening. */
  stop(): void {
    this.events.off('changed', this.onChanged);
    this.timers.clearInterval(this.heartbeat);
    this.timers.clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.pending.clear();
    for (const sink of this.sinks.keys()) sink.end();
    this.sinks.clear();
  }

  get open(): number {
    return this.sinks.size;
  }

  /** Takes a new stream of `owner`, or says which limit is reached (maxStreams in all, maxPerOwner of this owner). */
  add(sink: StreamSink, owner: string): 'added' | 'full' | 'owner-full' {
    if (this.sinks.size >= this.opts.maxStreams) return 'full';
    let owned = 0;
    for (const o of this.sinks.values()) if (o === owner) owned++;
    if (owned >= this.opts.maxPerOwner) return 'owner-full';
    this.sinks.set(sink, owner);
    sink.write(`retry: ${this.opts.retryMs}\n: open\n\n`);
    return 'added';
  }

  remove(sink: StreamSink): void {
    this.sinks.delete(sink);
  }

  /** Ends the streams of these accounts (removed, or their password or role changed): a revoked token hears no more. */
  endOwners(names: readonly string[]): void {
    for (const [sink, owner] of this.sinks) {
      if (!names.includes(owner)) continue;
      this.sinks.delete(sink);
      sink.end();
    }
  }

  private notice(area: HubArea, id?: string): void {
    if (this.sinks.size === 0) return;
    const ids = this.pending.get(area);
    if (ids === null) {
      // the whole area is due already
    } else if (id === undefined || (ids && ids.size >= this.opts.maxIdsPerArea && !ids.has(id))) {
      this.pending.set(area, null);
    } else if (ids) ids.add(id);
    else this.pending.set(area, new Set([id]));
    this.flushTimer ??= this.timers.setTimeout(() => this.flush(), this.opts.coalesceMs);
  }

  private flush(): void {
    this.flushTimer = undefined;
    const pending = this.pending;
    this.pending = new Map();
    let text = '';
    for (const [area, ids] of pending) {
      if (ids === null) text += changedEvent({ area });
      else for (const id of ids) text += changedEvent({ area, id });
    }
    if (text) this.sendAll(text);
  }

  private sendAll(text: string): void {
    for (const sink of this.sinks.keys()) {
      if (sink.buffered() > this.opts.maxBufferedBytes) {
        this.sinks.delete(sink);
        sink.end();
      } else sink.write(text);
    }
  }
}

const changedEvent = (data: { area: HubArea; id?: string }): string => `event: changed\ndata: ${JSON.stringify(data)}\n\n`;

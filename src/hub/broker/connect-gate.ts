/** The part of a socket the gate uses (a net.Socket; a stand-in in tests). */
export type GatedSocket = {
  readonly destroyed: boolean;
  pause(): unknown;
  resume(): unknown;
  destroy(): unknown;
  once(event: 'close' | 'error', listener: () => void): unknown;
};

export const LOGINS_IN_PROGRESS = 128;
export const WAITING_AT_MOST = 20_000;
/** A login holds its place this long at most, so connections that send nothing cannot hold the gate shut. */
export const PLACE_MS = 500;

/**
 * How many connections the broker works on logging in at once; the others wait, unread, newest
 * first. After a hub restart the whole fleet reconnects within its jitter window: served
 * all at once, each CONNACK waits behind every other login, clients give up at their connect
 * timeout and come back, and work spent on an abandoned login (and the offline will it leaves)
 * is lost, so the broker never catches up. Served a bounded number at a time, each login is done
 * in milliseconds; a client that gives up while waiting closes a socket nothing was spent on.
 * Newest first because the newest waiter is the one furthest from its client's timeout: served
 * oldest first, an overloaded broker would answer each just as its client gives up.
 * Beyond `waitingAtMost` waiting, a new connection is closed at once (its client retries later).
 * A login that takes longer than `placeMs` (or a connection that sends nothing) gives up its
 * place and carries on ungated, so an idle flood delays the queue by at most that per place.
 */
export class ConnectGate {
  private inProgress = 0;
  private readonly waiting: GatedSocket[] = [];
  private readonly held = new WeakMap<GatedSocket, NodeJS.Timeout>();

  constructor(
    private readonly serve: (socket: GatedSocket) => void,
    private readonly opts = { inProgress: LOGINS_IN_PROGRESS, waitingAtMost: WAITING_AT_MOST, placeMs: PLACE_MS },
  ) {}

  /** A new connection: served now, or held until a login ends. */
  admit(socket: GatedSocket): void {
    if (this.inProgress < this.opts.inProgress) return this.start(socket);
    if (this.waiting.length >= this.opts.waitingAtMost) {
      socket.destroy();
      return;
    }
    socket.pause();
    // Reset by its client while waiting: an 'error' nobody listened to would end the process.
    socket.once('error', () => socket.destroy());
    this.waiting.push(socket);
  }

  /** `socket`'s login ended (CONNACK sent, refused, the connection closed, or its time is up); the next waiting one goes in. */
  done(socket: GatedSocket): void {
    const timer = this.held.get(socket);
    if (!timer) return;
    clearTimeout(timer);
    this.held.delete(socket);
    this.inProgress--;
    for (let next = this.waiting.pop(); next; next = this.waiting.pop()) {
      // Closed by its client while it waited: nothing to do for it.
      if (next.destroyed) continue;
      next.resume();
      return this.start(next);
    }
  }

  get counts(): { inProgress: number; waiting: number } {
    return { inProgress: this.inProgress, waiting: this.waiting.length };
  }

  private start(socket: GatedSocket): void {
    this.inProgress++;
    this.held.set(socket, setTimeout(() => this.done(socket), this.opts.placeMs));
    socket.once('close', () => this.done(socket));
    this.serve(socket);
  }
}

import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Cleanup } from './cleanup.js';

/**
 * A local TCP proxy in front of a broker, for one client: `cut()` stops forwarding both ways
 * without closing anything, as a network partition does (the sockets stay open, each side's
 * bytes are held, a close is not passed on); `restore()` delivers what was held, in order, and
 * forwards again, so late packets arrive as a healed TCP connection delivers them. A side that
 * closed during the cut closes the other at the restore.
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private cutNow = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Listens on a free port of 127.0.0.1 and forwards each connection to `target` (host:port). */
  static async start(cleanup: Cleanup, target: { host: string; port: number }): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy!.accept(client, target));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy = new TcpProxy(server, (server.address() as { port: number }).port);
    cleanup.defer(() => proxy.close());
    return proxy;
  }

  /** `url` (mqtt://user:pass@host:port) with its host and port pointing at this proxy. */
  urlFor(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  cut(): void {
    this.cutNow = true;
  }

  restore(): void {
    this.cutNow = false;
    for (const pair of this.pairs) pair.flush();
  }

  /** Bytes held by the partition now, both ways. */
  heldBytes(): number {
    let n = 0;
    for (const pair of this.pairs) n += pair.heldBytes();
    return n;
  }

  /**
   * Ends the partition by dropping every connection: what was held is lost, as the bytes in
   * flight are when a connection dies, and both sides see a close. New connections go through.
   */
  drop(): void {
    this.cutNow = false;
    for (const pair of this.pairs) pair.destroy();
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) pair.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, target: { host: string; port: number }): void {
    const upstream = connect(target.port, target.host);
    const pair = new Pair(client, upstream, () => this.cutNow, () => this.pairs.delete(pair));
    this.pairs.add(pair);
  }
}

/** One proxied connection: two sockets, what each sent while cut, and whether each closed then. */
class Pair {
  private readonly held = new Map<Socket, Buffer[]>();
  private readonly ended = new Set<Socket>();
  private gone = false;

  constructor(
    private readonly a: Socket,
    private readonly b: Socket,
    private readonly isCut: () => boolean,
    private readonly done: () => void,
  ) {
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      from.setNoDelay(true);
      this.held.set(from, []);
      from.on('data', (chunk: Buffer) => (this.isCut() ? this.held.get(from)!.push(chunk) : to.write(chunk)));
      // A close during a cut is what the partition hides; it is passed on at the restore.
      from.on('close', () => (this.isCut() ? this.ended.add(from) : this.destroy()));
      from.on('error', () => undefined);
    }
  }

  heldBytes(): number {
    let n = 0;
    for (const chunks of this.held.values()) for (const chunk of chunks) n += chunk.length;
    return n;
  }

  flush(): void {
    if (this.gone) return;
    if (this.ended.size > 0) return this.destroy();
    for (const [from, to] of [
      [this.a, this.b],
      [this.b, this.a],
    ] as const) {
      for (const chunk of this.held.get(from)!.splice(0)) to.write(chunk);
    }
  }

  destroy(): void {
    if (this.gone) return;
    this.gone = true;
    this.a.destroy();
    this.b.destroy();
    this.done();
  }
}

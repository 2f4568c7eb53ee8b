import { createServer, connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

// The services partition test cuts an agent off with this proxy: a cut must look like a
// partition (nothing passes, nothing closes), and a restore like a healed connection.
describe('the test TCP proxy (test/support/tcp-proxy.ts)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function echoPair() {
    const received: string[] = [];
    let serverSide!: Socket;
    const server = createServer((s) => {
      serverSide = s;
      s.setEncoding('utf8').on('data', (d: string) => received.push(d));
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanup.defer(() => new Promise((r) => server.close(r)));
    const proxy = await TcpProxy.start(cleanup, { host: '127.0.0.1', port: (server.address() as { port: number }).port });
    const client = connect(proxy.port, '127.0.0.1');
    cleanup.defer(() => client.destroy());
    const fromServer: string[] = [];
    let clientClosed = false;
    client.setEncoding('utf8').on('data', (d: string) => fromServer.push(d));
    client.on('close', () => (clientClosed = true));
    client.on('error', () => undefined);
    await waitFor('the connection through the proxy', () => serverSide);
    return { proxy, client, server: () => serverSide, received, fromServer, clientClosed: () => clientClosed };
  }

  it('holds bytes both ways while cut and delivers them in order at the restore', async () => {
    const p = await echoPair();
    p.client.write('a');
    await waitFor('a through', () => p.received.join('') === 'a');
    p.proxy.cut();
    p.client.write('b');
    p.server().write('x');
    await new Promise((r) => setTimeout(r, 200));
    expect([p.received.join(''), p.fromServer.join('')]).toEqual(['a', '']);
    p.proxy.restore();
    await waitFor('held bytes through', () => p.received.join('') === 'ab' && p.fromServer.join('') === 'x');
  });

  it('hides a close during the cut and passes it on at the restore', async () => {
    const p = await echoPair();
    p.proxy.cut();
    p.server().destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect(p.clientClosed()).toBe(false);
    p.proxy.restore();
    await waitFor('the client closed', () => p.clientClosed());
  });
});

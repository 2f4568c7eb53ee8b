import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';

/**
 * The kernel's ephemeral range (listen(0) and every outgoing connection take ports from it): test
 * ports come from below it, so a port a hub gives up for a restart cannot meanwhile become another
 * test's client socket or listen(0) port.
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 12_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}
const LOW = 10_000;
const HIGH = ephemeralLow();
/** Ports this process handed out already: not handed out twice. */
const given = new Set<number>();

/** A TCP port nobody is listening on right now (never assume 1883 or 3000), outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (given.has(port) || !(await portIsFree(port))) continue;
    given.add(port);
    return port;
  }
  throw new Error(`no free port found between ${LOW} and ${HIGH}`);
}

/** Whether nothing listens on 127.0.0.1:`port`: a listen there succeeds (and is closed again). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(false) : reject(err)));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Whether a TCP connection to 127.0.0.1:`port` is accepted (by the kernel: the listener may be stopped). */
export function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

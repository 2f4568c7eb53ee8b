import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { Aedes } from 'aedes';
import type { Logger } from '../shared/logger.js';

export type EmbeddedBroker = { url: string; port: number; close(): Promise<void> };

/** The zero-setup broker: aedes on a TCP port, in the hub's process. */
export async function startEmbeddedBroker(host: string, port: number, log: Logger): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker({ drainTimeout: 30_000, concurrency: 2000 });
  aedes.on('clientError', (client, err) => log.debug({ client: client.id, err: err.message }, 'mqtt client error'));
  // No Nagle: small QoS 1 acks would otherwise wait for delayed ACKs (~40 ms a round trip).
  const server: Server = createServer({ noDelay: true }, aedes.handle);
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  log.info({ host, port: actual }, 'embedded MQTT broker listening');
  return {
    url: `mqtt://${host === '0.0.0.0' ? '127.0.0.1' : host}:${actual}`,
    port: actual,
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

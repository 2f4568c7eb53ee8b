import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { duplexPair, type Duplex } from 'node:stream';
import { Aedes } from 'aedes';
import type { Logger } from '../../shared/logger.js';
import type { StateDb } from '../state-db.js';
import type { TickBatch } from '../tick-batch.js';
import { BrokerStore } from './broker-store.js';
import { SqlitePersistence } from './sqlite-persistence.js';

export type EmbeddedBroker = {
  url: string;
  port: number;
  /** The broker came back with the sessions and retained messages a previous run left on disk. */
  restoredState: boolean;
  /**
   * A connection to the broker that never leaves the process: the hub's own client uses it so
   * each publish, PUBACK and echoed head costs no loopback TCP write (those syscalls were the
   * largest single cost of a webhook). Agents and other clients use `url`.
   */
  connectInProcess(): Duplex;
  /**
   * Publishes as the broker itself: the same steps as a client's PUBLISH up to the point where
   * aedes would send the PUBACK (retained message stored, queued for offline persistent
   * sessions, subscribers served), without encoding and parsing a packet on each side.
   */
  publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain?: boolean }): Promise<void>;
  close(): Promise<void>;
};

export type EmbeddedBrokerOptions = {
  host: string;
  port: number;
  /**
   * Where sessions, queues, retained messages and wills are kept: the hub's state database and
   * its tick batch, or a state dir whose database the broker opens alone; neither: memory only.
   */
  state?: { db: StateDb; batch: TickBatch } | { stateDir: string };
  /** aedes' heartbeat; wills left by a previous run are swept every 4 beats (default 60 s). */
  heartbeatIntervalMs?: number;
};

/** The zero-setup broker: aedes on a TCP port, in the hub's process. */
export async function startEmbeddedBroker({ host, port, state, heartbeatIntervalMs }: EmbeddedBrokerOptions, log: Logger): Promise<EmbeddedBroker> {
  const inProcess = new WeakSet<object>();
  const store = state === undefined ? undefined : 'stateDir' in state ? BrokerStore.open(state.stateDir) : new BrokerStore(state.db, state.batch);
  const persistence = store && new SqlitePersistence(store, { isInProcess: (client) => inProcess.has((client as { conn?: object }).conn ?? {}) });
  let aedes: Aedes | undefined;
  let server: Server | undefined;
  const close = async () => {
    if (aedes) await new Promise<void>((resolve) => aedes!.close(() => resolve()));
    if (server?.listening) await new Promise<void>((resolve) => server!.close(() => resolve()));
    if (persistence) await persistence.destroy();
    else store?.close();
  };
  try {
    aedes = await Aedes.createBroker({
      drainTimeout: 30_000,
      concurrency: 2000,
      ...(heartbeatIntervalMs && { heartbeatInterval: heartbeatIntervalMs }),
      ...(persistence && {
        persistence,
        // aedes sends a client's QoS 1 PUBACK before it stores the message; store it here first.
        authorizePublish: (client, packet, done) => {
          if (packet.topic.startsWith('$SYS/')) return done(new Error('$SYS/ topic is reserved'));
          if (!client || packet.qos !== 1) return done(null);
          persistence.persistBeforeAck(packet as never).then(() => done(null), done);
        },
      }),
    });
    if (persistence) {
      // The moment aedes hands a publish to its subscribers (see SqlitePersistence.renumber).
      const mq = (aedes as unknown as { mq: { emit(packet: { qos?: number }, cb?: () => void): unknown } }).mq;
      const emit = mq.emit.bind(mq);
      mq.emit = (packet, cb) => {
        if (packet.qos) persistence.renumber(packet as never);
        return emit(packet, cb);
      };
    }
    aedes.on('clientError', (client, err) => log.debug({ client: client.id, err: err.message }, 'mqtt client error'));
    // aedes reports failures of its own work here (a will it could not publish or delete, a
    // persistence read); without a listener an EventEmitter 'error' would end the process.
    (aedes as unknown as NodeJS.EventEmitter).on('error', (err: Error) => log.error({ err: err.message }, 'embedded MQTT broker error'));
    // No Nagle: small QoS 1 acks would otherwise wait for delayed ACKs (~40 ms a round trip).
    server = createServer({ noDelay: true }, aedes.handle);
    server.listen(port, host);
    await once(server, 'listening');
  } catch (err) {
    // Whatever started is stopped again, so a failed start leaves no port or file open.
    await close().catch(() => undefined);
    throw err;
  }
  const broker = aedes;
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  log.info({ host, port: actual, persistence: store ? 'sqlite' : 'memory', restored: store?.existed ?? false }, 'embedded MQTT broker listening');
  return {
    url: `mqtt://${host === '0.0.0.0' ? '127.0.0.1' : host}:${actual}`,
    port: actual,
    restoredState: store?.existed ?? false,
    connectInProcess() {
      const [hubSide, brokerSide] = duplexPair();
      // A pair does not carry a close across as a socket does: when aedes drops the client (or
      // the client ends), close the other side too, or mqtt.js would wait forever for 'close'.
      hubSide.once('close', () => brokerSide.destroy());
      brokerSide.once('close', () => hubSide.destroy());
      inProcess.add(brokerSide);
      broker.handle(brokerSide);
      return hubSide;
    },
    publish(topic, payload, opts) {
      return new Promise<void>((resolve, reject) => {
        broker.publish({ cmd: 'publish', topic, payload, qos: opts.qos, retain: opts.retain ?? false, dup: false }, (err) => (err ? reject(err) : resolve()));
      });
    },
    close,
  };
}

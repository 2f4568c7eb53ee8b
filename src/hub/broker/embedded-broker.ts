import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { once } from 'node:events';
import { duplexPair, type Duplex } from 'node:stream';
import Database from 'better-sqlite3';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { TopicContract } from '../../shared/contract/topic-table.js';
import type { Logger } from '../../shared/logger.js';
import { StartupError } from '../../shared/startup.js';
import type { StateDb } from '../state-db.js';
import type { TickBatch } from '../tick-batch.js';
import { LiveUsers } from '../users/live-users.js';
import { BrokerAccess, type Refusals } from './broker-access.js';
import type { LoginRefusal } from '../users/login-refusal.js';
import { BrokerStore } from './broker-store.js';
import { boundBeforeLogin } from './connect-bound.js';
import { ConnectGate } from './connect-gate.js';
import { InProcessInbox, type AedesRouter } from './in-process-inbox.js';
import { JobOwners } from './job-owners.js';
import type { RequestPublishers } from './request-publishers.js';
import { SqlitePersistence } from './sqlite-persistence.js';

export type EmbeddedBroker = {
  url: string;
  port: number;
  /** `mqtts://…` of the TLS listener, when broker.tls is set. */
  tlsUrl?: string;
  /** What the broker refused since it started (logins, publishes, subscriptions, wills). */
  refused(): Refusals;
  /** The broker came back with the sessions and retained messages a previous run left on disk. */
  restoredState: boolean;
  /**
   * A connection to the broker that never leaves the process: the hub's own client uses it so
   * each publish, PUBACK and echoed head costs no loopback TCP write (those syscalls were the
   * largest single cost of a webhook). Agents and other clients use `url`.
   */
  connectInProcess(): Duplex;
  /** The hub's inbound messages from the broker's router itself, with no client in between (InProcessInbox). */
  inbox(): InProcessInbox;
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
  /** Retained topics the broker keeps in memory only (SqlitePersistenceOptions.memoryOnlyRetained). */
  memoryOnlyRetained?: (topic: string) => boolean;
  /** aedes' heartbeat; wills left by a previous run are swept every 4 beats (default 60 s). */
  heartbeatIntervalMs?: number;
  /**
   * Who may connect and what each client may do (the hub always passes it). Without it every
   * client is let in and may do anything: only tests of the broker's own storage start it so.
   */
  access?: {
    usersFile: string;
    allowAnonymous: boolean;
    contract: TopicContract;
    /** Where semaphore job owners are kept (the hub's state database); default: memory. */
    db?: StateDb;
    /** The audit log's: each refused login, and who published each operator request. */
    onLoginRefused?(refusal: LoginRefusal): void;
    publishers?: RequestPublishers;
  };
  /** A second listener, MQTT over TLS, with the same authentication (files read by readTlsFiles). */
  tls?: { host: string; port: number } & TlsFiles;
};

/** The zero-setup broker: aedes on a TCP port, in the hub's process. */
export async function startEmbeddedBroker({ host, port, state, memoryOnlyRetained, heartbeatIntervalMs, access: accessOpts, tls }: EmbeddedBrokerOptions, log: Logger): Promise<EmbeddedBroker> {
  const inProcess = new WeakSet<object>();
  /** Connections whose login succeeded: no longer bound by BEFORE_LOGIN_BYTES. */
  const loggedIn = new WeakSet<object>();
  const isInProcess = (client: unknown) => inProcess.has((client as { conn?: object }).conn ?? {});
  const store = state === undefined ? undefined : 'stateDir' in state ? BrokerStore.open(state.stateDir) : new BrokerStore(state.db, state.batch);
  const persistence = store && new SqlitePersistence(store, { isInProcess, memoryOnlyRetained });
  const ownersDb = accessOpts && !accessOpts.db ? new Database(':memory:') : undefined;
  let users: LiveUsers | undefined;
  let aedes: Aedes | undefined;
  let server: Server | undefined;
  let tlsServer: Server | undefined;
  const close = async () => {
    users?.stop();
    if (aedes) await new Promise<void>((resolve) => aedes!.close(() => resolve()));
    for (const s of [server, tlsServer]) if (s?.listening) await new Promise<void>((resolve) => s.close(() => resolve()));
    if (persistence) await persistence.destroy();
    else store?.close();
    ownersDb?.close();
  };
  let access: BrokerAccess | undefined;
  try {
    if (accessOpts) {
      users = new LiveUsers(accessOpts.usersFile, log, (names) => access!.disconnect(names));
      users.start();
      access = new BrokerAccess({ users, allowAnonymous: accessOpts.allowAnonymous, contract: accessOpts.contract, owners: new JobOwners(accessOpts.db ?? ownersDb!), isInProcess, onLoginRefused: accessOpts.onLoginRefused, publishers: accessOpts.publishers }, log);
      if (accessOpts.allowAnonymous) log.warn({ usersFile: accessOpts.usersFile }, 'broker.allowAnonymous is on: clients without a password are let in, with what agents and operators may do; turn it off once every client has an account');
    }
    const guard = access;
    aedes = await Aedes.createBroker({
      drainTimeout: 30_000,
      concurrency: 2000,
      ...(heartbeatIntervalMs && { heartbeatInterval: heartbeatIntervalMs }),
      ...(persistence && { persistence }),
      ...(guard && {
        authenticate: (client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void) =>
          guard.authenticate(client, username, password, (err, ok) => {
            if (!err && ok) loggedIn.add(client.conn);
            done(err, ok);
          }),
        authorizeSubscribe: guard.authorizeSubscribe,
      }),
      // Without accounts a client is in once its CONNECT has arrived (within the bound).
      ...(!guard && { preConnect: (client: Client, _packet: unknown, done: (err: Error | null, ok: boolean) => void) => (loggedIn.add(client.conn), done(null, true)) }),
      // A refused publish (or will) is an error: aedes closes the client's connection and drops
      // the message (MQTT 3.1.1 has no negative PUBACK). aedes sends a client's QoS 1 PUBACK
      // before it stores the message; store it here first.
      authorizePublish: (client, packet, done) => {
        if (packet.topic.startsWith('$SYS/')) return done(new Error('$SYS/ topic is reserved'));
        const refused = guard?.refusePublish(client, packet);
        if (refused) return done(new Error(refused));
        if (!persistence || !client || packet.qos !== 1) return done(null);
        persistence.persistBeforeAck(packet as never).then(() => done(null), done);
      },
    });
    if (guard) aedes.on('clientDisconnect', (client: Client) => guard.forget(client));
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
    const gate = new ConnectGate((socket) => aedes!.handle(socket as Socket));
    aedes.on('connackSent', (_packet: unknown, client: Client) => gate.done(client.conn as Socket));
    const handle = (socket: Socket) => {
      boundBeforeLogin(socket, loggedIn);
      gate.admit(socket);
    };
    server = createServer({ noDelay: true }, handle);
    server.listen(port, host);
    await once(server, 'listening');
    if (tls) {
      // A client certificate is asked for only when there is a CA to check it against; one that
      // does not verify falls back to the password (rejectUnauthorized off), never to a name.
      tlsServer = createTlsServer({ cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: tls.ca !== undefined, rejectUnauthorized: false }, handle);
      tlsServer.listen(tls.port, tls.host);
      await once(tlsServer, 'listening');
    }
  } catch (err) {
    // Whatever started is stopped again, so a failed start leaves no port or file open.
    await close().catch(() => undefined);
    throw err;
  }
  const broker = aedes;
  const guard = access;
  const actual = listeningPort(server, port);
  const tlsPort = tlsServer && listeningPort(tlsServer, tls!.port);
  log.info({ host, port: actual, ...(tls && { tlsHost: tls.host, tlsPort, clientCertificates: tls.ca !== undefined }), persistence: store ? 'sqlite' : 'memory', restored: store?.existed ?? false, auth: accessOpts ? (accessOpts.allowAnonymous ? 'users file, anonymous allowed' : 'users file') : 'off' }, 'embedded MQTT broker listening');
  const local = (h: string) => (h === '0.0.0.0' ? '127.0.0.1' : h);
  return {
    url: `mqtt://${local(host)}:${actual}`,
    port: actual,
    ...(tls && { tlsUrl: `mqtts://${local(tls.host)}:${tlsPort}` }),
    refused: () => ({ ...(guard?.refused ?? { logins: 0, publishes: 0, subscribes: 0, wills: 0 }) }),
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
    inbox: () => new InProcessInbox(broker as unknown as AedesRouter),
    publish(topic, payload, opts) {
      const packet = { cmd: 'publish' as const, topic, payload, qos: opts.qos, retain: opts.retain ?? false, dup: false };
      if (!persistence || opts.qos !== 1) {
        return new Promise<void>((resolve, reject) => broker.publish(packet, (err) => (err ? reject(err) : resolve())));
      }
      // Acknowledged as a client's QoS 1 PUBLISH is: once stored (retained, queued for offline
      // sessions). aedes' own callback comes only once the message is written to every
      // subscriber's socket: seconds for 10,000 agents, up to its drain timeout for one that reads
      // nothing. The copy: the store knows a staged message by its payload buffer, and a push and
      // its head may share one.
      packet.payload = Buffer.from(payload);
      return persistence.persistBeforeAck(packet as never).then(() => {
        broker.publish(packet, (err) => err && log.error({ topic, err: err.message }, 'embedded broker: a stored publish was not delivered'));
      });
    },
    close,
  };
}

function listeningPort(server: Server, fallback: number): number {
  const address = server.address();
  return typeof address === 'object' && address ? address.port : fallback;
}

export type TlsFiles = { cert: Buffer; key: Buffer; ca?: Buffer };

/** broker.tls's files, read before anything starts: a missing one is a start-up error naming its key. */
export function readTlsFiles(paths: { cert: string; key: string; ca?: string }): TlsFiles {
  const read = (key: 'cert' | 'key' | 'ca', path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new StartupError(`cannot read broker.tls.${key} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
    }
  };
  return { cert: read('cert', paths.cert), key: read('key', paths.key), ...(paths.ca && { ca: read('ca', paths.ca) }) };
}

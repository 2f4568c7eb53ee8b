import type { TLSSocket } from 'node:tls';
import type { AuthenticateError, Client, PublishPacket, Subscription } from 'aedes';
import { refusePublish, refuseSubscribe } from '../../shared/contract/access.js';
import { ANONYMOUS, type Identity } from '../../shared/contract/roles.js';
import { isRolloutChannel, type TopicContract } from '../../shared/contract/topic-table.js';
import type { Logger } from '../../shared/logger.js';
import { decodeSemUid, SemRegister } from '../../shared/contract/semaphore-messages.js';
import { decode } from '../../shared/messages.js';
import { NO_SUCH_USER, verifyPassword } from '../users/password-hash.js';
import type { LiveUsers } from '../users/live-users.js';
import { ANONYMOUS_OWNER, type JobOwners } from './job-owners.js';
import { LoginThrottle, LogLimit, loginThrottleKey } from './rate-limits.js';
import type { RequestPublishers } from './request-publishers.js';
import type { LoginRefusal } from '../users/login-refusal.js';

const HUB: Identity = { name: 'hub', role: 'hub' };

export type BrokerAccessOptions = {
  users: LiveUsers;
  allowAnonymous: boolean;
  contract: TopicContract;
  owners: JobOwners;
  /** The hub's own client, connected over an in-process stream: the hub, without a password. */
  isInProcess(client: Client): boolean;
  now?: () => number;
  /** Told each refused login (the audit log); `name` null for an anonymous client. */
  onLoginRefused?(refusal: LoginRefusal): void;
  /** Told who published each operator request it let through (the audit log). */
  publishers?: RequestPublishers;
};

/** What the broker refused since it started, for the log and for tests. */
export type Refusals = { logins: number; publishes: number; subscribes: number; wills: number };

/**
 * Who each broker client is and what it may do: aedes' authenticate and authorize handlers, with
 * every decision taken by the topic contract (src/shared/contract/). Refusals are counted and
 * logged, at most one line per client name and topic kind every 10 s.
 */
export class BrokerAccess {
  readonly refused: Refusals = { logins: 0, publishes: 0, subscribes: 0, wills: 0 };
  private readonly identities = new WeakMap<Client, Identity>();
  private readonly sessions = new Map<string, Set<Client>>();
  private readonly throttle = new LoginThrottle();
  private readonly logLimit = new LogLimit();
  private readonly now: () => number;

  constructor(
    private readonly opts: BrokerAccessOptions,
    private readonly log: Logger,
  ) {
    this.now = opts.now ?? Date.now;
  }

  identity(client: Client): Identity | undefined {
    return this.identities.get(client);
  }

  /** Ends the live sessions of these accounts (removed, or their password or role changed). */
  disconnect(names: string[]): void {
    for (const name of names) {
      const clients = this.sessions.get(name);
      if (!clients) continue;
      this.log.warn({ user: name, sessions: clients.size }, 'broker account removed or changed: its sessions are closed');
      for (const client of clients) client.close();
      this.sessions.delete(name);
    }
  }

  forget(client: Client): void {
    const who = this.identities.get(client);
    if (who && 'name' in who) this.sessions.get(who.name)?.delete(client);
  }

  authenticate = (client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void => {
    this.login(client, username, password).then(
      (who) => {
        this.identities.set(client, who);
        // Every account's sessions, so a removed or changed one is closed; the in-process hub has none.
        if ('name' in who && who !== HUB) {
          let set = this.sessions.get(who.name);
          if (!set) this.sessions.set(who.name, (set = new Set()));
          set.add(client);
        }
        done(null, true);
      },
      (err: AuthenticateError) => done(err, false),
    );
  };

  private async login(client: Client, username: string | undefined, password: Buffer | undefined): Promise<Identity> {
    if (this.opts.isInProcess(client)) return HUB;
    const address = remoteAddress(client);
    const who = await this.identify(client, address, username, password);
    if ('role' in who && who.role === 'viewer') {
      this.refused.logins++;
      this.note('login', who, address, { reason: 'viewer account' }, 'broker refused a login: viewer accounts are for the HTTP API only');
      this.opts.onLoginRefused?.({ name: who.name, address, reason: 'viewer account: for the HTTP API only' });
      throw authError(5, 'not authorized');
    }
    const will = (client as unknown as { _will?: { topic: string } })._will;
    // A will is published when the client is gone: checked now, while it is known who left it.
    const willRefusal = will && refusePublish(this.opts.contract, who, will.topic);
    if (willRefusal) {
      this.refused.wills++;
      this.note('will', who, address, { topic: will.topic.slice(0, 200), reason: willRefusal }, 'broker refused a connection: its will is on a topic it may not publish');
      throw authError(5, 'not authorized');
    }
    return who;
  }

  private async identify(client: Client, address: string, username: string | undefined, password: Buffer | undefined): Promise<Identity> {
    const users = this.opts.users.users;
    const certName = certificateUser(client);
    if (certName !== undefined && username === undefined) {
      const entry = users.get(certName);
      if (entry) return { name: certName, role: entry.role };
    }
    if (username === undefined) {
      if (this.opts.allowAnonymous) return ANONYMOUS;
      this.refused.logins++;
      this.note('login', ANONYMOUS, address, { ...(certName !== undefined && { certificate: certName }) }, 'broker refused an anonymous client (broker.allowAnonymous is off)');
      this.opts.onLoginRefused?.({ name: null, address, reason: `anonymous client${certName !== undefined ? ` (certificate of unknown user ${certName.slice(0, 64)})` : ''} and broker.allowAnonymous is off` });
      throw authError(5, 'not authorized');
    }
    const entry = users.get(username);
    const key = loginThrottleKey(address, username, entry?.password);
    const wait = this.throttle.delayMs(key, this.now());
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const matches = await verifyPassword(password?.toString('utf8') ?? '', entry?.password ?? NO_SUCH_USER);
    if (entry && matches) {
      this.throttle.succeeded(key);
      return { name: username, role: entry.role };
    }
    this.refused.logins++;
    const failures = this.throttle.failed(key, this.now());
    // The name is logged (it may be a typo of a real one), the password never.
    const reason = entry ? 'wrong password' : 'no such user';
    this.note('login', undefined, address, { user: username.slice(0, 128), failures, reason }, 'broker refused a login');
    this.opts.onLoginRefused?.({ name: username, address, reason });
    throw authError(4, 'bad user name or password');
  }

  /** Why `client` may not publish `packet`, or null. Also claims and releases semaphore jobs. */
  refusePublish(client: Client | null, packet: PublishPacket): string | null {
    // A will swept after a restart, its client gone: it was checked when that client connected.
    if (!client) return null;
    const who = this.identities.get(client);
    if (!who) return 'unknown client';
    const reason = 'role' in who && who.role === 'hub' ? this.refuseRolloutJobEnd(who, packet) : (refusePublish(this.opts.contract, who, packet.topic) ?? this.refusePayload(who, packet));
    if (reason) {
      this.refused.publishes++;
      this.note(`publish:${this.opts.contract.lookup(packet.topic)?.spec.name ?? 'other'}`, who, remoteAddress(client), { topic: packet.topic.slice(0, 200), reason }, 'broker refused a publish and closed the connection');
    } else {
      this.opts.publishers?.noteAccepted(who, remoteAddress(client), packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
    }
    return reason;
  }

  authorizeSubscribe = (client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void => {
    const who = this.identities.get(client);
    if (!who) return done(new Error('unknown client'));
    const reason = refuseSubscribe(this.opts.contract, who, sub.topic);
    if (!reason) return done(null, sub);
    this.refused.subscribes++;
    this.note('subscribe', who, remoteAddress(client), { filter: sub.topic.slice(0, 200), reason }, 'broker refused a subscription');
    // SUBACK 0x80 for this filter; the connection stays.
    done(null, null);
  };

  /** The spec's payload check at the door, then semaphore job ownership. */
  private refusePayload(who: Identity, packet: PublishPacket): string | null {
    const found = this.opts.contract.lookup(packet.topic);
    if (!found) return null;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const checked = found.spec.payload(payload);
    if (!checked.ok) return `malformed ${found.spec.name} payload: ${checked.error}`;
    const channel = found.params.channel;
    if (channel === undefined) return null;
    switch (found.spec.name) {
      case 'semaphore.register': {
        const reg = decode(SemRegister, payload);
        return reg.ok ? this.claim(who, channel, reg.value.uid) : reg.error;
      }
      case 'semaphore.finished':
      case 'semaphore.aborted': {
        const uid = decodeSemUid(payload);
        return uid.ok ? this.release(who, channel, uid.value) : uid.error;
      }
      default:
        return null;
    }
  }

  /**
   * A hub account may publish anything but the end of a host's rollout job: that would free its
   * slot mid-update, past the rollout's policy, with no signature to stop it (the hub's engines
   * end jobs in-process, never over MQTT).
   */
  private refuseRolloutJobEnd(who: Identity & { name: string }, packet: PublishPacket): string | null {
    const found = this.opts.contract.lookup(packet.topic);
    const channel = found?.params.channel;
    if (!found || channel === undefined || !isRolloutChannel(channel) || (found.spec.name !== 'semaphore.finished' && found.spec.name !== 'semaphore.aborted')) return null;
    const uid = decodeSemUid(Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
    const owner = uid.ok ? this.opts.owners.owner(channel, uid.value) : undefined;
    return owner === undefined || owner === who.name ? null : `job "${uid.ok ? uid.value.slice(0, 64) : ''}" in ${channel} is a host's rollout job: only that host ends it`;
  }

  private claim(who: Identity, channel: string, uid: string): string | null {
    const name = ownerName(who);
    // An agent's rollout job is itself: it may not hold (and so block) another agent's uid.
    if ('role' in who && who.role === 'agent' && uid !== who.name) return `agent "${who.name}" may register only its own id as uid (not "${uid.slice(0, 64)}")`;
    const owner = this.opts.owners.owner(channel, uid);
    if (owner !== undefined && owner !== name && !isOperator(who)) return `job "${uid.slice(0, 64)}" in ${channel} belongs to another client`;
    this.opts.owners.claim(channel, uid, name, this.now());
    return null;
  }

  private release(who: Identity, channel: string, uid: string): string | null {
    const owner = this.opts.owners.owner(channel, uid);
    if (owner === undefined) return null;
    if (owner !== ownerName(who) && !isOperator(who)) return `job "${uid.slice(0, 64)}" in ${channel} belongs to another client`;
    this.opts.owners.release(channel, uid);
    return null;
  }

  /** One warning, at most one a 10 s per kind and client (its name, else its address). */
  private note(kind: string, who: Identity | undefined, address: string, fields: Record<string, unknown>, msg: string): void {
    const named = who && 'name' in who ? who : undefined;
    const suppressed = this.logLimit.allow(`${kind}\u0000${named ? named.name : `@${address}`}`, this.now());
    if (suppressed === null) return;
    const client = named ? { client: named.name, role: named.role } : who ? { client: 'anonymous' } : {};
    this.log.warn({ ...client, address, ...fields, ...(suppressed > 0 && { suppressed }) }, msg);
  }
}

const isOperator = (who: Identity): boolean => 'role' in who && who.role === 'operator';
const ownerName = (who: Identity): string => ('name' in who ? who.name : ANONYMOUS_OWNER);

function authError(returnCode: 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

function remoteAddress(client: Client): string {
  return (client.conn as { remoteAddress?: string }).remoteAddress ?? 'in-process';
}

/** The CN of a client certificate the TLS listener verified against broker.tls.ca, if any. */
function certificateUser(client: Client): string | undefined {
  const conn = client.conn as Partial<TLSSocket>;
  if (!conn.authorized || typeof conn.getPeerCertificate !== 'function') return undefined;
  const cn = conn.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' ? cn : Array.isArray(cn) ? cn[0] : undefined;
}

import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { decode } from '../shared/messages.js';
import { SemErrorEvent, SemExpired, SemGo, SemInfo, SemQueued } from '../shared/contract/semaphore-messages.js';
import { SEM_DEFAULT_PREFIX, semaphoreTopic } from '../shared/topics.js';
import { SemaphoreError } from './errors.js';

export { SemaphoreError, type SemaphoreErrorCode } from './errors.js';

export type AcquireOptions = {
  /** Seconds the job may hold the slot before the hub takes it back (plus the channel's offset). */
  timeout: number;
  /** Seconds to wait in the queue at most; the hub enforces it. */
  queueTimeout?: number;
  /** Aborting while waiting withdraws the registration and rejects with code `aborted`. */
  signal?: AbortSignal;
  /**
   * Aborting while waiting stops waiting but leaves the registration with the hub (rejects with
   * code `aborted`): a process that stops and will take its job back with the same `token`.
   */
  detach?: AbortSignal;
  /** Defaults to a random UUID. */
  uid?: string;
  /**
   * Withdraw any earlier registration of this uid first: a process that restarted or lost its
   * connection registers again under its stable uid instead of being refused as a duplicate.
   */
  replace?: boolean;
  /**
   * The registration's token; defaults to a fresh one. Pass the token of an earlier acquire (kept
   * by the caller across a restart) to take that job back: the hub takes the register as a repeat
   * and its retained go, which carries the token, hands the lease back; an expired with the token
   * says it is gone. Without `replace` then, which would withdraw the very job to take back.
   */
  token?: string;
  /** Called when the hub reports the job's place in the queue (1 = next). */
  onQueued?(position: number, waiting: number): void;
};

export type Lease = {
  readonly uid: string;
  readonly channel: string;
  /** The registration's token: what a restarted process passes to `acquire` to take this lease back. */
  readonly token: string;
  /** Aborts (reason: SemaphoreError `expired` or `cancelled`) if the hub takes the slot back before release. */
  readonly signal: AbortSignal;
  /** Publishes `finished`: the job is done. Idempotent. */
  release(): Promise<void>;
  /** Publishes `aborted`: the job gave up. Idempotent. */
  abort(): Promise<void>;
};

/** `retained`: a copy the broker kept, sent because this client (re)subscribed. */
type Listener = (topic: string, payload: Buffer, retained: boolean) => void;

/**
 * A coordinosaur-protocol client over an mqtt.js connection the caller owns. It subscribes to
 * its replies before it registers, so a go that follows at once is never missed. Each acquire
 * sends a token (fresh unless given one): the hub's go, queued and expired carry it back, so a retained go or
 * expired of an earlier job with the same uid is never taken for this one.
 */
export class SemaphoreClient {
  private readonly prefix: string;
  private readonly listeners = new Set<Listener>();
  /** Filters are shared between concurrent acquires on one channel: unsubscribe after the last one. */
  private readonly filterUsers = new Map<string, number>();
  /** Re-sends the register of each acquire still waiting. */
  private readonly waiting = new Set<() => void>();

  /**
   * `open`: checks each message under the prefix before it is read (the pushfleet agent's
   * signature check: rollout grants must be signed by the hub) and passes `deliver` what to
   * read, or drops it.
   */
  constructor(
    private readonly mqtt: MqttClient,
    opts: { prefix?: string; open?: (topic: string, payload: Buffer, deliver: (payload: Buffer) => void) => void } = {},
  ) {
    this.prefix = opts.prefix ?? SEM_DEFAULT_PREFIX;
    const open = opts.open;
    const ours = [`${this.prefix}/`, `/${this.prefix}/`];
    mqtt.on('message', (topic, raw, packet) => {
      if (this.listeners.size === 0) return;
      const deliver = (payload: Buffer) => this.listeners.forEach((l) => l(topic, payload, packet.retain));
      if (open && ours.some((p) => topic.startsWith(p))) open(topic, raw, deliver);
      else deliver(raw);
    });
  }

  /**
   * Call after the connection came back. The broker sends a waiting acquire its retained go or
   * expired when mqtt.js subscribes again; its register is sent again too, in case the hub never
   * got it (same token, so a hub that has it takes it as a repeat and changes nothing).
   */
  resync(): void {
    for (const resend of this.waiting) resend();
  }

  async acquire(channel: string, opts: AcquireOptions): Promise<Lease> {
    const uid = opts.uid ?? randomUUID();
    const token = opts.token ?? randomUUID();
    const topic = (action: Parameters<typeof semaphoreTopic>[2], id?: string) => semaphoreTopic(this.prefix, channel, action, id);
    if (opts.signal?.aborted || opts.detach?.aborted) throw new SemaphoreError('aborted', 'aborted before registering');
    const filters = [`${this.prefix}/${channel}/+/${uid}`, topic('error')];

    return new Promise<Lease>((resolve, reject) => {
      let state: 'waiting' | 'held' | 'done' = 'waiting';
      let resent = false;
      const expiry = new AbortController();
      const finish = () => {
        state = 'done';
        this.listeners.delete(listener);
        this.waiting.delete(resend);
        opts.signal?.removeEventListener('abort', onAbort);
        opts.detach?.removeEventListener('abort', onDetach);
        void this.unuse(filters);
      };
      const fail = (err: SemaphoreError) => {
        finish();
        reject(err);
      };
      const lose = (err: SemaphoreError) => {
        finish();
        expiry.abort(err);
      };
      const end = async (action: 'finished' | 'aborted') => {
        if (state !== 'held') return;
        finish();
        await this.mqtt.publishAsync(topic(action), uid, { qos: 1 });
      };
      const onAbort = () => {
        if (state !== 'waiting') return;
        fail(new SemaphoreError('aborted', `stopped waiting for a slot in "${channel}"`));
        void this.mqtt.publishAsync(topic('aborted'), uid, { qos: 1 }).catch(() => undefined);
      };
      const onDetach = () => {
        if (state === 'waiting') fail(new SemaphoreError('aborted', `stopped waiting for a slot in "${channel}"; the registration stays`));
      };
      /**
       * Ours: carries our token, or none and sent live (a hub without tokens, which retains
       * nothing). A retained copy without our token is an earlier job's.
       */
      const ours = (got: string | null | undefined, retained: boolean) => got === token || (got === undefined && !retained);
      const listener: Listener = (t, payload, retained) => {
        if (t === topic('go', uid)) {
          // Empty: the hub cleared the go. Held without an expired first: the hub no longer counts us.
          if (payload.length === 0) {
            if (state === 'held') lose(new SemaphoreError('expired', `the hub no longer counts job "${uid}" as holding a slot in "${channel}"`));
            return;
          }
          if (state !== 'waiting' || !ours(goToken(payload, uid), retained)) return; // a repeat, or an earlier job's
          state = 'held';
          this.waiting.delete(resend);
          resolve({ uid, channel, token, signal: expiry.signal, release: () => end('finished'), abort: () => end('aborted') });
        } else if (t === topic('queued', uid) && state === 'waiting') {
          const q = decode(SemQueued, payload);
          if (q.ok && ours(q.value.token, retained)) opts.onQueued?.(q.value.position, q.value.waiting);
        } else if (t === topic('expired', uid) && payload.length > 0) {
          const e = decode(SemExpired, payload);
          if (!ours(e.ok ? e.value.token : undefined, retained)) return;
          const reason = e.ok ? e.value.reason : 'timeout';
          const cancelled = new SemaphoreError('cancelled', `the hub withdrew job "${uid}" from "${channel}"`);
          const timedOut = new SemaphoreError('expired', `the hub took back the slot in "${channel}" after the ${opts.timeout} s timeout`);
          if (state === 'waiting') {
            // timeout while waiting: granted and taken back before this client heard its go.
            fail(reason === 'cancelled' ? cancelled : reason === 'timeout' ? timedOut : new SemaphoreError('queue-timeout', `waited longer than ${opts.queueTimeout} s for a slot in "${channel}"`));
          } else if (state === 'held' && reason !== 'queue-timeout') lose(reason === 'cancelled' ? cancelled : timedOut);
        } else if (t === topic('error') && state === 'waiting' && !resent) {
          // After a re-send, a hub without tokens calls our own registration a duplicate.
          const e = decode(SemErrorEvent, payload);
          if (e.ok && e.value.uid === uid && e.value.topic.endsWith('/register')) fail(new SemaphoreError('rejected', `the hub refused the registration: ${e.value.error}`, e.value));
        }
      };
      const register = JSON.stringify({ uid, timeout: opts.timeout, ...(opts.queueTimeout !== undefined && { queueTimeout: opts.queueTimeout }), token });
      const send = () => this.mqtt.publishAsync(topic('register'), register, { qos: 1 });
      const resend = () => {
        resent = true;
        send().catch(() => undefined);
      };
      // Listening before subscribing: retained copies may arrive ahead of the SUBACK.
      this.listeners.add(listener);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      opts.detach?.addEventListener('abort', onDetach, { once: true });
      this.use(filters)
        .then(async () => {
          if (state !== 'waiting') return;
          this.waiting.add(resend);
          // One connection delivers in order, so the hub handles the withdrawal before the register.
          if (opts.replace) await this.mqtt.publishAsync(topic('aborted'), uid, { qos: 1 });
          await send();
        })
        .catch((err: Error) => fail(new SemaphoreError('rejected', `could not register: ${err.message}`)));
    });
  }

  /**
   * Ends a job this process holds no Lease for: it restarted after the work was done, before it
   * could say so. Safe to repeat: the hub ignores (answering `unknown-uid`) a job it no longer holds.
   */
  async end(channel: string, uid: string, action: 'finished' | 'aborted'): Promise<void> {
    await this.mqtt.publishAsync(semaphoreTopic(this.prefix, channel, action), uid, { qos: 1 });
  }

  /** Asks the hub for a channel's slots, queue and quotas. */
  async info(channel: string, timeoutMs = 5000): Promise<SemInfo> {
    const reply = semaphoreTopic(this.prefix, channel, 'infos/reply');
    await this.use([reply]);
    try {
      return await new Promise<SemInfo>((resolve, reject) => {
        const timer = setTimeout(() => done(new SemaphoreError('no-answer', `no infos reply for "${channel}" within ${timeoutMs} ms (is the hub running?)`)), timeoutMs);
        const listener: Listener = (t, payload) => {
          if (t !== reply) return;
          const d = decode(SemInfo, payload);
          if (d.ok) done(d.value);
        };
        const done = (result: SemInfo | Error) => {
          clearTimeout(timer);
          this.listeners.delete(listener);
          if (result instanceof Error) reject(result);
          else resolve(result);
        };
        this.listeners.add(listener);
        this.mqtt.publishAsync(semaphoreTopic(this.prefix, channel, 'infos'), '', { qos: 1 }).catch(done);
      });
    } finally {
      await this.unuse([reply]);
    }
  }

  private async use(filters: string[]): Promise<void> {
    const fresh = filters.filter((f) => {
      const n = this.filterUsers.get(f) ?? 0;
      this.filterUsers.set(f, n + 1);
      return n === 0;
    });
    if (fresh.length) await this.mqtt.subscribeAsync(fresh, { qos: 1 });
  }

  private async unuse(filters: string[]): Promise<void> {
    const last = filters.filter((f) => {
      const n = (this.filterUsers.get(f) ?? 1) - 1;
      if (n <= 0) this.filterUsers.delete(f);
      else this.filterUsers.set(f, n);
      return n <= 0;
    });
    if (last.length && this.mqtt.connected) await this.mqtt.unsubscribeAsync(last).catch(() => undefined);
  }
}

/** The token a go for `uid` carries: undefined for the seed's raw-uid go, null when it is not a go for `uid` at all. */
function goToken(payload: Buffer, uid: string): string | undefined | null {
  if (payload.toString('utf8') === uid) return undefined;
  const go = decode(SemGo, payload);
  return go.ok && go.value.uid === uid ? go.value.token : null;
}

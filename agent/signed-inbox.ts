import type { Logger } from '../src/shared/logger.js';
import { loadVerifyKey } from '../src/shared/signing/keys.js';
import { parseEnvelope } from '../src/shared/signing/envelope.js';
import type { SignedRefusal } from '../src/shared/signing/refusal.js';
import { signedTopic } from '../src/shared/signing/signed-topics.js';
import { Verifier } from '../src/shared/signing/verifier.js';
import { TopicContract } from '../src/shared/contract/topic-table.js';
import { StartupError } from '../src/shared/startup.js';
import { SeenSequenceFile } from './seen-sequences.js';

const RETRY_MS = 1000;

export type InboxSettings = { hubPublicKey?: string; acceptUnsigned: boolean; stateDir: string; semaphore: { prefix: string }; orchestrator?: { root: string } };

/**
 * The agent's one gate for messages that can make it act: every handler (heads, pins, rollbacks,
 * rollout grants, orchestrator commands) gets a message's inner payload from `open`, or nothing
 * when the message is refused, which is logged and handed to the `onRefused` handler.
 */
export class SignedInbox {
  private refusedHandler: (refusal: SignedRefusal) => void = () => undefined;
  private heldHandler: (topic: string, problem: string | null) => void = () => undefined;
  /** Per topic, the newest message whose sequence could not be recorded yet. */
  private readonly held = new Map<string, { bytes: Buffer; act: (payload: Buffer) => void }>();
  /** Held topics being checked again: a pass clears what their app shows. */
  private readonly retrying = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly contract: TopicContract,
    private readonly verifier: Verifier | null,
    private readonly acceptUnsigned: boolean,
    private readonly log: Logger,
  ) {}

  /** Reads the hub's public key and the accepted sequences; a problem is a start-up error naming the config key or file. */
  static create(settings: InboxSettings, log: Logger): SignedInbox {
    if (settings.hubPublicKey === undefined && !settings.acceptUnsigned) {
      throw new StartupError("hubPublicKey: required: the path of the hub's hub.pub (in the hub's state dir, or made by `pushfleet keys init`); or set acceptUnsigned: true to act on unsigned messages", 2);
    }
    const contract = new TopicContract({ semaphorePrefix: settings.semaphore.prefix, seedRoot: settings.orchestrator?.root });
    let verifier: Verifier | null = null;
    if (settings.hubPublicKey !== undefined) {
      let keys;
      try {
        keys = [loadVerifyKey(settings.hubPublicKey)];
      } catch (err) {
        throw new StartupError(`hubPublicKey: cannot use ${settings.hubPublicKey}: ${(err as Error).message}`, 2);
      }
      const seen = new SeenSequenceFile(settings.stateDir, undefined, (topic) => contract.lookup(topic)?.spec.replaySafe === true);
      try {
        seen.load();
      } catch (err) {
        throw new StartupError((err as Error).message, 2);
      }
      verifier = new Verifier({ contract, keys, seen, now: Date.now });
      log.info({ hubPublicKey: settings.hubPublicKey, kid: keys[0]!.kid }, 'acting only on messages signed by the hub');
    }
    if (settings.acceptUnsigned) {
      log.warn(
        { acceptUnsigned: true, verifying: verifier !== null },
        verifier
          ? 'acceptUnsigned: true: unsigned heads, pins, rollbacks, grants and commands are acted on; anyone who can publish on the broker can deploy here'
          : 'acceptUnsigned: true and no hubPublicKey: no signature is checked; anyone who can publish on the broker can deploy here',
      );
    }
    return new SignedInbox(contract, verifier, settings.acceptUnsigned, log);
  }

  /** Where refusals go (the agent reports them); set once the MQTT client exists. */
  onRefused(handler: (refusal: SignedRefusal) => void): void {
    this.refusedHandler = handler;
  }

  /** Told when a message is held (with why) and when it is no longer (null). */
  onHeld(handler: (topic: string, problem: string | null) => void): void {
    this.heldHandler = handler;
  }

  /**
   * Hands `act` the payload to act on (unchanged for topics that need no signature), or nothing
   * when the message is refused. A message whose sequence cannot be recorded yet (a full disk) is
   * held, the newest per topic, and checked again every RETRY_MS until it can: acting first would
   * let a restart take a replay of it.
   */
  open(topic: string, bytes: Buffer, act: (payload: Buffer) => void): void {
    if (this.acceptUnsigned) {
      const envelope = signedTopic(this.contract, topic) ? parseEnvelope(bytes) : null;
      if (!envelope) return act(bytes);
      if (!this.verifier) return act(Buffer.from(envelope.payload));
    }
    if (!this.verifier) return act(bytes);
    let verdict;
    try {
      verdict = this.verifier.check(topic, bytes);
    } catch (err) {
      if (!this.held.has(topic) && !this.retrying.has(topic)) {
        this.log.error({ topic, err: (err as Error).message }, 'signed message held: its sequence cannot be recorded; retrying');
        this.heldHandler(topic, (err as Error).message);
      }
      this.held.set(topic, { bytes, act });
      this.retrySoon();
      return;
    }
    if (this.held.delete(topic) || this.retrying.delete(topic)) this.heldHandler(topic, null);
    if (verdict.ok) return act(verdict.payload);
    this.refuse(topic, verdict.reason, verdict.detail);
  }

  /** Logs and reports a message not acted on; also for the seed's commands, which cannot be signed. */
  refuse(topic: string, reason: SignedRefusal['reason'], detail: string): void {
    const refusal: SignedRefusal = { topic, reason, detail, at: new Date().toISOString() };
    this.log.warn(refusal, 'refused unsigned or badly signed message');
    this.refusedHandler(refusal);
  }

  private retrySoon(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      for (const [topic, { bytes, act }] of [...this.held]) {
        this.held.delete(topic);
        this.retrying.add(topic);
        this.open(topic, bytes, act);
        this.retrying.delete(topic);
      }
    }, RETRY_MS).unref();
  }

  /** Drops what is held (the agent is stopping: a restart gets the retained messages again). */
  stop(): void {
    clearTimeout(this.retryTimer);
    this.held.clear();
  }
}

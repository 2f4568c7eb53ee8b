import mqtt, { type MqttClient } from 'mqtt';
import type { Cleanup } from './cleanup.js';

export type JobEvent = { at: number; job: string; channel: string; kind: 'go' | 'expired' | 'finished' | 'connected' };

/**
 * One job as a paho-style coordinosaur client runs it: clean session, auto-reconnect,
 * subscribing again in its on-connect handler, QoS 0 publishes. It registers once, starts work on
 * the first go whose payload is its uid, publishes finished when done, and stops working if it
 * hears `expired`. Every step goes to the shared `log`, in the order this process saw them.
 */
export class CoordinosaurJob {
  readonly client: MqttClient;
  state: 'waiting' | 'working' | 'done' = 'waiting';
  expiredBeforeGo?: string;

  constructor(
    url: string,
    readonly channel: string,
    readonly uid: string,
    private readonly opts: { timeout: number; workMs: number; log: JobEvent[] },
  ) {
    this.client = mqtt.connect(url, { clean: true, reconnectPeriod: 200, connectTimeout: 2000, resubscribe: false });
    const base = `coordinosaur/${channel}`;
    this.client.on('connect', () => {
      this.note('connected');
      this.client.subscribe([`${base}/go/${uid}`, `${base}/expired/${uid}`], { qos: 1 });
    });
    this.client.on('error', () => undefined); // refused while the hub (and its broker) restarts: mqtt.js retries
    this.client.on('message', (topic, payload) => {
      const text = payload.toString();
      if (topic === `${base}/go/${uid}` && text === uid && this.state === 'waiting') {
        this.state = 'working';
        this.note('go');
        setTimeout(() => this.finish(), opts.workMs).unref();
      } else if (topic === `${base}/expired/${uid}` && text !== '') {
        const { reason } = JSON.parse(text) as { reason: string };
        if (this.state === 'waiting') this.expiredBeforeGo = reason;
        if (this.state === 'working') this.note('expired');
        this.state = 'done';
      }
    });
  }

  static start(cleanup: Cleanup, url: string, channel: string, uid: string, opts: { timeout: number; workMs: number; log: JobEvent[] }): CoordinosaurJob {
    const job = new CoordinosaurJob(url, channel, uid, opts);
    cleanup.defer(() => job.client.endAsync(true));
    return job;
  }

  /** Registers, once connected (QoS 0, as paho's default). */
  async register(): Promise<void> {
    if (!this.client.connected) await new Promise((resolve) => this.client.once('connect', resolve));
    await this.client.publishAsync(`coordinosaur/${this.channel}/register`, JSON.stringify({ uid: this.uid, timeout: this.opts.timeout }), { qos: 0 });
  }

  /** Drops the TCP connection as a network blip would; mqtt.js reconnects by itself. */
  cut(): void {
    this.client.stream.destroy();
  }

  private finish(): void {
    if (this.state !== 'working') return; // it heard expired meanwhile
    this.state = 'done';
    this.note('finished');
    this.client.publish(`coordinosaur/${this.channel}/finished`, this.uid, { qos: 0 });
  }

  private note(kind: JobEvent['kind']): void {
    this.opts.log.push({ at: Date.now(), job: this.uid, channel: this.channel, kind });
  }
}

/** The most jobs of one channel working at once, as the jobs themselves saw it (go … finished or expired). */
export function mostWorkingAtOnce(log: JobEvent[], channel: string): number {
  let now = 0;
  let most = 0;
  for (const e of log) {
    if (e.channel !== channel) continue;
    if (e.kind === 'go') most = Math.max(most, ++now);
    else if (e.kind === 'finished' || e.kind === 'expired') now--;
  }
  return most;
}

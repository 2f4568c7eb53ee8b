import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { mostWorkingAtOnce, type JobEvent } from '../support/coordinosaur-job.js';
import { coordinosaurClient } from '../support/coordinosaur-client.js';
import { startMosquitto } from '../support/mosquitto.js';
import { RestartableHub } from '../support/restartable-hub.js';
import { waitFor } from '../support/wait.js';

const CHANNEL = 'burst';
const CLIENTS = 120;
const MAX = 30;
const KILLS = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A coordinosaur client cycling register → go → finished on its own uid as fast as the hub
 * answers, unless `hold` says to keep the slot (while the test looks at a restarted hub).
 */
class Cycler {
  state: 'waiting' | 'working' = 'waiting';
  constructor(
    readonly client: MqttClient,
    readonly uid: string,
    private readonly log: JobEvent[],
    private readonly hold: () => boolean,
  ) {
    client.on('message', (topic, payload) => {
      if (topic !== this.topic('go', uid) || payload.toString() !== uid || this.state !== 'waiting') return;
      this.state = 'working';
      this.note('go');
      if (!this.hold()) this.finish();
    });
  }

  topic(action: string, uid?: string): string {
    return `coordinosaur/${CHANNEL}/${action}${uid === undefined ? '' : `/${uid}`}`;
  }

  register(): void {
    this.client.publish(this.topic('register'), JSON.stringify({ uid: this.uid, timeout: 600 }), { qos: 1 });
  }

  /** Gives the slot back and queues again. */
  finish(): void {
    this.state = 'waiting';
    this.note('finished');
    this.client.publish(this.topic('finished'), this.uid, { qos: 1 });
    this.register();
  }

  private note(kind: JobEvent['kind']): void {
    this.log.push({ at: Date.now(), job: this.uid, channel: CHANNEL, kind });
  }
}

describe('semaphore grants across a hub kill -9 in the middle of a burst', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  // The hub commits a turn's grants together and sends their go after: a kill at any instant of a
  // burst of grants must leave every go a client heard in the restarted hub's state.
  it('every go a client heard is a slot the restarted hub counts; never more than max hold one', async () => {
    // Clients stay connected to mosquitto while only the hub dies.
    const broker = await startMosquitto();
    cleanup.defer(() => broker.stop());
    const hub = await RestartableHub.create(cleanup, broker.url, { config: { engines: { semaphore: { maxConcurrentJobs: MAX, positionUpdateMs: 0 } } } });
    await hub.start();

    const log: JobEvent[] = [];
    let holding = false;
    const cyclers = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 200 });
        cleanup.defer(() => client.endAsync(true));
        const c = new Cycler(client, `b${i}`, log, () => holding);
        await client.subscribeAsync(c.topic('go', c.uid), { qos: 1 });
        return c;
      }),
    );
    const observer = await coordinosaurClient(cleanup, broker.url);
    cyclers.forEach((c) => c.register());

    const problems: string[] = [];
    let grantsBefore = 0;
    for (let k = 0; k < KILLS; k++) {
      // A burst: grants at the hub's pace, then a kill at a moment nobody chose.
      await waitFor('grants flowing', () => log.filter((e) => e.kind === 'go').length >= grantsBefore + 100, 30_000);
      await sleep(Math.random() * 300);
      // From here on a go is held: one the hub sends in its last instant must still be held when we look.
      holding = true;
      await hub.kill();
      grantsBefore = log.filter((e) => e.kind === 'go').length;
      await sleep(300); // gos the hub sent before it died reach their clients
      const heard = cyclers.filter((c) => c.state === 'working').map((c) => c.uid);
      await hub.start();
      const info = await observer.infos(CHANNEL);
      const counted = new Set(info.working.map((j) => j.uid));
      for (const uid of heard) if (!counted.has(uid)) problems.push(`kill ${k + 1}: ${uid} heard its go, the restarted hub does not count its slot`);
      if (info.working.length > MAX) problems.push(`kill ${k + 1}: ${info.working.length} working after the restart`);
      // Messages the dead hub never stored are sent again, as a client that lost them would.
      const known = new Set([...counted, ...info.waiting.map((j) => j.uid)]);
      for (const c of cyclers) {
        if (c.state === 'working') continue;
        if (counted.has(c.uid)) c.client.publish(c.topic('finished'), c.uid, { qos: 1 }); // its finished was lost
        if (counted.has(c.uid) || !known.has(c.uid)) c.register();
      }
      holding = false;
      for (const c of cyclers) if (c.state === 'working') c.finish();
    }
    await waitFor('grants flowing after the last restart', () => log.filter((e) => e.kind === 'go').length >= grantsBefore + 100, 30_000);
    expect(problems).toEqual([]);
    expect(mostWorkingAtOnce(log, CHANNEL)).toBeLessThanOrEqual(MAX);
  }, 120_000);
});

import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { startMosquitto } from '../support/mosquitto.js';
import { freePort } from '../support/ports.js';
import { BROKERS, startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';
import { coordinosaurClient, uids } from '../support/coordinosaur-client.js';

describe.each(BROKERS)('semaphore state across a hub restart over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('keeps working and waiting jobs, quotas and overrides; expires what timed out while it was down', async () => {
    // The same broker both times: one mosquitto, or the embedded aedes on the same port.
    const where =
      broker === 'mosquitto'
        ? await startMosquitto().then((m) => (cleanup.defer(() => m.stop()), { mqtt: { url: m.url } }))
        : { broker: { port: await freePort() } };
    const engines = { semaphore: { channels: { 'quota-': { quotasPerInterval: { 3600: { name: 'hour', limit: 1 } } } } } };
    const first = await startTestHub(cleanup, 'aedes', { ...where, engines });
    const before = await coordinosaurClient(cleanup, first.mqttUrl);
    await before.register('r', 'long', 600);
    await before.register('r', 'waiter', 600);
    await before.register('r', 'patient', 600, '/coordinosaur');
    await before.publish('coordinosaur/paused/concurrency/set', '0');
    await before.register('paused', 'p1');
    await before.register('e', 'doomed', 1);
    await before.register('quota-x', 'q1');
    await before.publish('coordinosaur/quota-x/finished', 'q1');
    await before.seen('coordinosaur/e/go/doomed');
    await before.infos('paused');
    await first.stop();
    await new Promise((r) => setTimeout(r, 1500)); // doomed's timeout passes while the hub is down

    const second = await startTestHub(cleanup, 'aedes', { ...where, engines, stateDir: first.stateDir });
    const after = await coordinosaurClient(cleanup, second.mqttUrl);
    if (broker === 'mosquitto') {
      // The watcher stayed connected to mosquitto, so it sees what the new hub published at start.
      expect(JSON.parse(await before.seen('coordinosaur/e/expired/doomed'))).toMatchObject({ reason: 'timeout' });
    }
    expect((await after.infos('e')).working).toEqual([]);
    let r = await after.infos('r');
    expect([uids(r.working), uids(r.waiting)]).toEqual([['long'], ['waiter', 'patient']]);
    const paused = await after.infos('paused');
    expect([paused.maxConcurrentJobs, uids(paused.waiting)]).toEqual([0, ['p1']]);
    expect((await after.infos('quota-x')).quotas).toMatchObject([{ name: 'hour', used: 1 }]);

    await after.register('r', 'waiter');
    await after.publish('coordinosaur/r/finished', 'long');
    expect(await after.seen('coordinosaur/r/go/waiter')).toBe('waiter');
    await after.publish('coordinosaur/r/finished', 'waiter');
    expect(await after.seen('/coordinosaur/r/go/patient')).toBe('patient');
    expect(after.errors('r')).toMatchObject([{ code: 'duplicate-uid', uid: 'waiter' }]);
    r = await after.infos('r');
    expect([uids(r.working), r.waiting]).toEqual([['patient'], []]);
  });
});

describe('retained semaphore messages across a hub restart over mosquitto', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('makes the go and expired the broker kept agree with the state the hub restarted with', async () => {
    const m = await startMosquitto();
    cleanup.defer(() => m.stop());
    const first = await startTestHub(cleanup, 'aedes', { mqtt: { url: m.url } });
    const c = await coordinosaurClient(cleanup, first.mqttUrl);
    await c.register('r', 'kept');
    await c.register('r', 'later');
    await c.register('e', 'doomed', 0.2);
    await c.seen('coordinosaur/e/expired/doomed');
    await first.stop();
    // The hub comes back on another state dir (lost, or restored from an old backup): the go and
    // expired the broker kept are about jobs that state does not hold.
    const second = await startTestHub(cleanup, 'aedes', { mqtt: { url: m.url } });
    const late = await coordinosaurClient(cleanup, second.mqttUrl);
    await late.register('r', 'later');
    await late.seen('coordinosaur/r/go/later');
    const kept = async () => {
      const fresh = await watch(cleanup, m.url, 'coordinosaur/#');
      await late.infos('r'); // a round trip: retained copies arrive right after the subscription
      return fresh.messages.filter((msg) => msg.retain).map((msg) => `${msg.topic}=${msg.payload}`);
    };
    await waitFor('stale retained messages cleared', async () => {
      const now = await kept();
      return now.length === 1 && now[0] === 'coordinosaur/r/go/later=later';
    });
  });
});


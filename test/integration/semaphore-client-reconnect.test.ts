import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { SemaphoreClient, type Lease } from '../../src/semaphore-client/client.js';
import { Cleanup } from '../support/cleanup.js';
import { coordinosaurClient, uids } from '../support/coordinosaur-client.js';
import { BROKERS, startTestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

describe.each(BROKERS)('SemaphoreClient with retained go and expired over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function setup() {
    const hub = await startTestHub(cleanup, broker, { engines: { semaphore: { positionUpdateMs: 0 } } });
    const connect = async (reconnectPeriod = 0) => {
      const client = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod });
      cleanup.defer(() => client.endAsync(true));
      const sem = new SemaphoreClient(client);
      // As the agent's rollout gate and `sem run` do.
      client.on('connect', () => sem.resync());
      return { client, sem };
    };
    return { connect, raw: await coordinosaurClient(cleanup, hub.mqttUrl) };
  }

  it('a wait granted while its connection was down gets its go once back, and holds once', async () => {
    const { connect, raw } = await setup();
    const holder = await (await connect()).sem.acquire('c', { timeout: 30 });
    const b = await connect(500);
    let lease: Lease | undefined;
    const waiting = b.sem.acquire('c', { timeout: 30, uid: 'agent-b', replace: true }).then((l) => (lease = l));
    await waitFor('agent-b queued', async () => uids((await raw.infos('c')).waiting).includes('agent-b'));
    b.client.stream.destroy();
    await holder.release();
    await waitFor('agent-b granted by the hub', async () => uids((await raw.infos('c')).working).includes('agent-b'));
    expect(lease).toBeUndefined();
    await waiting;
    expect(lease).toMatchObject({ uid: 'agent-b', channel: 'c' });
    // Its re-sent register was a repeat: no second job, no duplicate (only `replace`'s withdrawal
    // of a uid that was not there is answered, as in any channel no engine claims).
    const info = await raw.infos('c');
    expect([uids(info.working), info.waiting]).toEqual([['agent-b'], []]);
    expect(raw.errors('c').map((e) => e.code)).toEqual(['unknown-uid']);
    await lease!.release();
    await waitFor('slot free', async () => (await raw.infos('c')).working.length === 0);
  });

  it('never takes the retained go of an earlier job with the same uid for its own', async () => {
    const { connect, raw } = await setup();
    // Two earlier jobs hold slots under uids a client reuses: a seed client's (raw go) and one
    // of a SemaphoreClient that is gone (its token's go).
    await raw.publish('coordinosaur/c/concurrency/set', '2');
    await raw.register('c', 'agent-1');
    await (await connect()).sem.acquire('c', { timeout: 30, uid: 'agent-2' });
    await raw.seen('coordinosaur/c/go/agent-1');
    await raw.publish('coordinosaur/c/concurrency/set', '0');
    const leases: Lease[] = [];
    const again = await connect();
    for (const uid of ['agent-1', 'agent-2']) void again.sem.acquire('c', { timeout: 30, uid, replace: true }).then((l) => leases.push(l));
    await waitFor('both waiting again', async () => (await raw.infos('c')).waiting.length === 2);
    expect(leases).toEqual([]);
    await raw.publish('coordinosaur/c/concurrency/set', '2');
    await waitFor('both granted', () => leases.length === 2);
    expect(uids((await raw.infos('c')).working).sort()).toEqual(['agent-1', 'agent-2']);
  });

  it('a lease whose job the hub expired while the client was away is told so on reconnect', async () => {
    const { connect, raw } = await setup();
    const b = await connect(1500);
    const lease = await b.sem.acquire('c', { timeout: 0.5 });
    b.client.stream.destroy();
    await raw.seen(`coordinosaur/c/expired/${lease.uid}`);
    expect(lease.signal.aborted).toBe(false);
    await waitFor('lease aborted', () => lease.signal.aborted);
    expect(lease.signal.reason).toMatchObject({ code: 'expired' });
  });
});

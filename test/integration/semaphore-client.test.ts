import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { SemaphoreClient, SemaphoreError } from '../../src/semaphore-client/client.js';
import { Cleanup } from '../support/cleanup.js';
import { startTestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';
import { uids } from '../support/coordinosaur-client.js';

describe('SemaphoreClient', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function setup() {
    const hub = await startTestHub(cleanup, 'aedes', { engines: { semaphore: { positionUpdateMs: 50 } } });
    const connect = async () => {
      const client = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 });
      cleanup.defer(() => client.endAsync(true));
      return new SemaphoreClient(client);
    };
    return { a: await connect(), b: await connect() };
  }

  it('waits for the holder to release, reporting its queue position', async () => {
    const { a, b } = await setup();
    const held = await a.acquire('c', { timeout: 30 });
    const positions: number[] = [];
    let granted = false;
    const next = b.acquire('c', { timeout: 30, onQueued: (p) => positions.push(p) }).then((l) => ((granted = true), l));
    await waitFor('queued', () => positions.length > 0);
    expect(granted).toBe(false);
    await held.release();
    await held.release(); // idempotent
    const lease = await next;
    expect(positions).toEqual([1]);
    expect(uids((await a.info('c')).working)).toEqual([lease.uid]);
    await lease.release();
    expect((await a.info('c')).working).toEqual([]);
  });

  it('withdraws a waiting registration when its signal aborts', async () => {
    const { a, b } = await setup();
    await a.acquire('c', { timeout: 30 });
    const ctl = new AbortController();
    const waiting = b.acquire('c', { timeout: 30, signal: ctl.signal, uid: 'quitter' });
    await waitFor('queued', async () => uids((await a.info('c')).waiting).includes('quitter'));
    ctl.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'SemaphoreError', code: 'aborted' });
    await waitFor('queue empty', async () => (await a.info('c')).waiting.length === 0);
  });

  it('hands a held slot back to a new client that registers with the same uid and token, without a second grant', async () => {
    const { a, b } = await setup();
    const first = await a.acquire('c', { timeout: 30, uid: 'restarted' });
    const queued: number[] = [];
    const other = a.acquire('c', { timeout: 30, uid: 'other', onQueued: (p) => queued.push(p) });
    await waitFor('the other queued', () => queued.length > 0);
    // b stands for the process after a restart: same uid and token, no replace.
    const again = await b.acquire('c', { timeout: 30, uid: 'restarted', token: first.token });
    expect(again.token).toBe(first.token);
    const info = await b.info('c');
    expect(uids(info.working)).toEqual(['restarted']);
    expect(uids(info.waiting)).toEqual(['other']);
    await again.release();
    expect((await other).uid).toBe('other');
    // After the work is done, `end` is safe to repeat: the hub holds nothing more for the uid.
    await b.end('c', 'restarted', 'finished');
    expect(uids((await b.info('c')).working)).toEqual(['other']);
  });

  it('stops waiting on detach and leaves the registration for a restart to take back', async () => {
    const { a, b } = await setup();
    const holder = await a.acquire('c', { timeout: 30 });
    const detach = new AbortController();
    const token = 'tok-detached';
    const waiting = b.acquire('c', { timeout: 30, uid: 'patient', token, detach: detach.signal });
    await waitFor('queued', async () => uids((await a.info('c')).waiting).includes('patient'));
    detach.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'aborted' });
    expect(uids((await a.info('c')).waiting)).toEqual(['patient']);
    const back = b.acquire('c', { timeout: 30, uid: 'patient', token });
    await holder.release();
    expect((await back).uid).toBe('patient');
  });

  it('fails with typed errors: rejected (duplicate uid), queue-timeout, and an expired lease', async () => {
    const { a, b } = await setup();
    const held = await a.acquire('c', { timeout: 1, uid: 'same' });
    const dup = await b.acquire('c', { timeout: 30, uid: 'same' }).catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(SemaphoreError);
    expect(dup).toMatchObject({ code: 'rejected', event: { code: 'duplicate-uid', uid: 'same' } });
    await expect(b.acquire('c', { timeout: 30, queueTimeout: 0.2 })).rejects.toMatchObject({ code: 'queue-timeout' });
    await waitFor('lease expiry', () => held.signal.aborted);
    expect(held.signal.reason).toMatchObject({ code: 'expired' });
  });
});

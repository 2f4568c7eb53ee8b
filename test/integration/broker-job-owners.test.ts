import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { userUrl } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { RestartableHub } from '../support/restartable-hub.js';
import { waitFor } from '../support/wait.js';

/** Publishes once on a fresh connection: acknowledged, or cut off by the broker. */
async function publishOnce(url: string, topic: string, payload: string): Promise<'accepted' | 'connection closed'> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000 });
  try {
    return await Promise.race([
      new Promise<'connection closed'>((resolve) => client.once('close', () => resolve('connection closed'))),
      client.publishAsync(topic, payload, { qos: 1 }).then(() => 'accepted' as const),
    ]);
  } finally {
    client.end(true);
  }
}

describe('semaphore job owners on the embedded broker', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('only the client that registered a job may end it, and that survives a hub kill -9', async () => {
    const hub = await RestartableHub.create(cleanup);
    const owner = await userUrl(hub.mqttUrl, 'runner-a', 'client');
    const other = await userUrl(hub.mqttUrl, 'runner-b', 'client');
    const operator = await userUrl(hub.mqttUrl, 'ops', 'operator');
    await hub.start();

    expect(await publishOnce(owner, 'coordinosaur/ci/register', JSON.stringify({ uid: 'job-1', timeout: 600 }))).toBe('accepted');
    expect(await publishOnce(other, 'coordinosaur/ci/finished', 'job-1')).toBe('connection closed');
    // The claim is on disk before the PUBACK: a hub killed right after it still knows the owner.
    await hub.kill();
    await hub.start();
    expect(await publishOnce(other, '/coordinosaur/ci/aborted', 'job-1')).toBe('connection closed');
    expect(await publishOnce(other, 'coordinosaur/ci/register', JSON.stringify({ uid: 'job-1', timeout: 600 }))).toBe('connection closed');
    expect(await publishOnce(owner, 'coordinosaur/ci/finished', 'job-1')).toBe('accepted');
    // Ended, the uid is free again: another client may register it as its own job.
    expect(await publishOnce(other, 'coordinosaur/ci/register', JSON.stringify({ uid: 'job-1', timeout: 600 }))).toBe('accepted');
    expect(await publishOnce(owner, 'coordinosaur/ci/finished', 'job-1')).toBe('connection closed');
    // Operators may end any job.
    expect(await publishOnce(operator, 'coordinosaur/ci/finished', 'job-1')).toBe('accepted');
    const refusals = await waitFor('the refusals in the log', () => {
      const found = hub.proc!.lines.filter((l) => l.msg === 'broker refused a publish and closed the connection');
      return found.length >= 1 && found;
    });
    expect(refusals[0]).toMatchObject({ client: 'runner-b', reason: 'job "job-1" in ci belongs to another client' });
  });
});

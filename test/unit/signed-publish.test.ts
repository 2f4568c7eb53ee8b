import { verify } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { HeadStore } from '../../src/hub/engines/heads/head-store.js';
import { Signer, signedPublisher } from '../../src/hub/signed-publish.js';
import { TickBatch } from '../../src/hub/tick-batch.js';
import { openStateDb } from '../../src/hub/state-db.js';
import { TopicContract } from '../../src/shared/contract/topic-table.js';
import { createLogger } from '../../src/shared/logger.js';
import { open, signedBytes } from '../../src/shared/signing/envelope.js';
import { rolloutChannel, semaphoreTopic } from '../../src/shared/topics.js';
import { Cleanup } from '../support/cleanup.js';
import { makeHubKeys } from '../support/signer.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('the hub signing its messages', () => {
  it('sends messages in the order they were published, however long a signature takes', async () => {
    const dir = cleanup.tempDir('pushfleet-sign-');
    const { key } = makeHubKeys(dir);
    const db = openStateDb(dir);
    cleanup.defer(() => db.close());
    let seq = 0;
    // The first signature is slow: the clear published after the go must still follow it.
    let slow = true;
    const signBytes = async (data: Buffer) => {
      if (slow) {
        slow = false;
        await new Promise((r) => setTimeout(r, 30));
      }
      const { sign } = await import('node:crypto');
      return sign(null, data, key.privateKey);
    };
    const signer = new Signer(key, new TopicContract(), () => ++seq, signBytes);
    const sent: [string, string][] = [];
    const raw = async (topic: string, payload: string | Buffer) => void sent.push([topic, payload.toString()]);
    const { publish } = signedPublisher(raw, signer, new HeadStore(db, new TickBatch(db)), () => undefined);
    const go = semaphoreTopic('coordinosaur', rolloutChannel('web.prod.0123456789ab'), 'go', 'web-1');
    await Promise.all([publish(go, '{"uid":"web-1"}', { qos: 1, retain: true }), publish(go, '', { qos: 1, retain: true }), publish('pushfleet/rollouts/x/state', '{}', { qos: 1 })]);
    expect(sent.map(([t, p]) => [t, p === '' ? 'clear' : (JSON.parse(p) as { pushfleet?: string }).pushfleet ?? 'plain'])).toEqual([
      [go, 'signed/v1'],
      [go, 'clear'],
      ['pushfleet/rollouts/x/state', 'plain'],
    ]);
    expect(open([key], Buffer.from(sent[0]![1])).ok).toBe(true);
  });

  it('signs on a worker thread, in order, and in-process once it is closed', async () => {
    // The compiled worker (npm test builds dist/ first): run from sources it signs in-process.
    const { SigningWorker } = (await import('../../dist/src/hub/signing-worker.js' as string)) as typeof import('../../src/hub/signing-worker.js');
    const { key } = makeHubKeys(cleanup.tempDir('pushfleet-sign-'));
    const worker = new SigningWorker(key.privateKey, createLogger('test', 'silent'));
    const data = Array.from({ length: 200 }, (_, i) => signedBytes({ kid: key.kid, topic: `t/${i}`, ts: i, seq: i }, Buffer.from(`payload ${i}`)));
    const sigs = await Promise.all(data.map((d) => worker.sign(d)));
    sigs.forEach((sig, i) => expect(verify(null, data[i]!, key.publicKey, sig), `signature ${i}`).toBe(true));
    await worker.close();
    expect(verify(null, data[0]!, key.publicKey, await worker.sign(data[0]!))).toBe(true);
  });
});

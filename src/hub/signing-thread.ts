/**
 * The signing worker's thread (see signing-worker.ts): signs each buffer it is sent with the key
 * it was started with, in the order they came.
 */
import { sign, type KeyObject } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

const key = (workerData as { privateKey: KeyObject }).privateKey;
parentPort!.on('message', ({ id, data }: { id: number; data: Uint8Array }) => {
  const sig = sign(null, data, key);
  parentPort!.postMessage({ id, sig }, [sig.buffer as ArrayBuffer]);
});

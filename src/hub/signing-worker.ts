import type { KeyObject } from 'node:crypto';
import { sign } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../shared/logger.js';

/**
 * Ed25519 signatures made on a worker thread. One signature (~50 µs here) per push was the largest
 * cost signing added to the hub's main thread, which is what limits webhook throughput; the
 * worker runs on another core. One worker, answering in the order it was asked, so messages to
 * one topic keep the order of their sequence numbers. Should it die, signing goes on in-process.
 */
export class SigningWorker {
  private worker: Worker | null;
  private readonly pending = new Map<number, { data: Buffer; resolve(sig: Buffer): void }>();
  private nextId = 0;

  constructor(
    private readonly privateKey: KeyObject,
    private readonly log: Logger,
  ) {
    const thread = new URL('./signing-thread.js', import.meta.url);
    // Run from the TypeScript sources (tests) there is no compiled thread to start: sign in-process.
    this.worker = existsSync(thread) ? new Worker(thread, { workerData: { privateKey } }) : null;
    if (!this.worker) return;
    this.worker.unref();
    this.worker.on('message', ({ id, sig }: { id: number; sig: Uint8Array }) => {
      const job = this.pending.get(id);
      this.pending.delete(id);
      job?.resolve(Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength));
    });
    this.worker.on('error', (err) => this.fallBack(`signing worker failed: ${err.message}`));
    this.worker.on('exit', (code) => this.fallBack(`signing worker exited with code ${code}`));
  }

  sign(data: Buffer): Promise<Buffer> {
    if (!this.worker) return Promise.resolve(sign(null, data, this.privateKey));
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { data, resolve });
      this.worker!.postMessage({ id, data });
    });
  }

  /** Signs what is still waiting in-process, in order, and goes on so. */
  private fallBack(why: string): void {
    if (!this.worker) return;
    this.worker = null;
    if (this.pending.size) this.log.warn({ pending: this.pending.size }, `${why}; signing in the hub's main thread`);
    for (const [id, job] of this.pending) {
      this.pending.delete(id);
      job.resolve(sign(null, job.data, this.privateKey));
    }
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.fallBack('hub stopping');
    await worker?.terminate();
  }
}

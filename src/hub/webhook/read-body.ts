import type { IncomingMessage } from 'node:http';

/** Why a body could not be read, with the HTTP status to answer. */
export class BodyError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The client is still sending (or stalled): answer, then close the connection. */
    readonly closeConnection = false,
    readonly retryAfter = false,
  ) {
    super(message);
  }
}

/**
 * The bytes of webhook bodies the hub holds at once, across all requests: what bounds memory when
 * many clients send at once, and what a client trickling a body costs (its bytes, not a slot).
 */
export class ByteBudget {
  private used = 0;

  constructor(readonly max: number) {}

  get held(): number {
    return this.used;
  }

  take(n: number): boolean {
    if (this.used + n > this.max) return false;
    this.used += n;
    return true;
  }

  release(n: number): void {
    this.used -= n;
  }
}

export type BodyLimits = {
  /** Largest body accepted. */
  maxBytes: number;
  /** The whole body must have arrived within this, counted from the end of the headers. */
  deadlineMs: number;
  /** Shared by all requests; the caller releases the body's length once it answered. */
  budget: ByteBudget;
};

/**
 * Reads a request body into one Buffer. Refuses a declared Content-Length over the limit before
 * buffering anything, and stops buffering as soon as a body passes the limit or the shared
 * budget, so an oversized body never sits in memory. A refused body is still read to its end
 * (and dropped) before the promise rejects: answering while the client still sends makes the
 * kernel reset the connection, and the client would see a reset instead of the answer. Nothing
 * waits past the deadline, so a client that sends slowly, or not at all, is cut there. GitHub
 * never compresses webhooks, so a Content-Encoding other than identity is refused.
 */
export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const { maxBytes, budget } = limits;
    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    let refused: BodyError | undefined =
      encoding === 'identity' ? undefined : new BodyError(415, `unsupported Content-Encoding "${encoding}"; send the body uncompressed`);
    const tooLarge = () => new BodyError(413, `body larger than the ${maxBytes} byte limit (webhook.maxBodyBytes)`);
    const declared = req.headers['content-length'];
    if (!refused && declared !== undefined && Number(declared) > maxBytes) refused = tooLarge();

    const chunks: Buffer[] = [];
    let size = 0;
    const refuse = (err: BodyError) => {
      refused = err;
      budget.release(size);
      chunks.length = 0;
    };
    const finish = (err?: BodyError) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      const failure = err ?? refused;
      if (failure) {
        if (!refused) budget.release(size);
        return reject(failure);
      }
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      if (refused) return;
      if (size + chunk.length > maxBytes) return refuse(tooLarge());
      if (!budget.take(chunk.length)) {
        return refuse(new BodyError(503, `the hub already holds ${budget.held} bytes of webhook bodies (webhook.maxBufferedBytes ${budget.max}); redeliver later`, false, true));
      }
      size += chunk.length;
      chunks.push(chunk);
    };
    const onEnd = () => finish();
    const onError = (err: Error) => finish(new BodyError(400, `could not read the body: ${err.message}`));
    const onAborted = () => onError(new Error('the client aborted the request'));
    const timer = setTimeout(
      () => finish(new BodyError(408, `the body did not arrive within ${limits.deadlineMs} ms (webhook.bodyTimeoutMs)`, true)),
      limits.deadlineMs,
    );
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ConfigError } from '../../../shared/config-file.js';
import { firstLine } from '../../../shared/startup.js';
import type { S3Settings } from './config.js';
import type { TableSource, TableText } from './model.js';
import { describeS3Error, parseS3Url, s3Client, s3Status, S3_TIMEOUT_MS } from './s3.js';

/**
 * Where the jobs table is read from (`engines.jobs.table`): a file, an https:// URL or an
 * s3://bucket/key. Each tells when the table is unchanged without the caller parsing it again.
 */

/** A table source that could not be read: one line naming the location and what to do. */
export class TableSourceError extends Error {
  override name = 'TableSourceError';
}

export type SourceOptions = {
  s3: S3Settings;
  /** Extra CA certificates (PEM) trusted for an https:// table; in production NODE_EXTRA_CA_CERTS does the same. */
  ca?: string | Buffer;
  timeoutMs?: number;
  /** A larger table is refused rather than held in memory. */
  maxBytes?: number;
};

export const MAX_TABLE_BYTES = 4 * 1024 * 1024;

/** `.yaml`/`.yml` is YAML; anything else is read as the seed's CSV. */
export function formatOf(location: string): TableText['format'] {
  const path = location.split(/[?#]/, 1)[0]!.toLowerCase();
  return path.endsWith('.yaml') || path.endsWith('.yml') ? 'yaml' : 'csv';
}

export function openTableSource(location: string, options: SourceOptions): TableSource {
  const maxBytes = options.maxBytes ?? MAX_TABLE_BYTES;
  const timeoutMs = options.timeoutMs ?? S3_TIMEOUT_MS;
  if (location.startsWith('s3://')) return new S3TableSource(location, s3Client(options.s3, timeoutMs), timeoutMs, maxBytes);
  if (/^https?:\/\//i.test(location)) {
    const url = new URL(location);
    // The table says which images run: over plain HTTP anyone on the path could rewrite it.
    if (url.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) throw new ConfigError(`engines.jobs.table: ${location} is plain http; use https:// (http only to localhost)`);
    return new HttpTableSource(url, options.ca, timeoutMs, maxBytes);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) throw new ConfigError(`engines.jobs.table: "${location}" is neither a file path, an https:// URL nor an s3://bucket/key`);
  return new FileTableSource(location, maxBytes);
}

const sha256 = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

function decode(bytes: Uint8Array, location: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new TableSourceError(`${location}: the jobs table is not UTF-8 text`);
  }
}

function tooLarge(location: string, maxBytes: number): TableSourceError {
  return new TableSourceError(`${location}: the jobs table is larger than ${maxBytes} bytes`);
}

/** Its version is the content's hash; mtime and size only spare reading a file that did not change. */
export class FileTableSource implements TableSource {
  private seen?: { stamp: string; version: string };

  constructor(
    readonly location: string,
    private readonly maxBytes: number,
  ) {}

  async read(since?: string): Promise<TableText | 'unchanged'> {
    try {
      const info = await stat(this.location);
      if (!info.isFile()) throw new TableSourceError(`${this.location}: not a file`);
      if (info.size > this.maxBytes) throw tooLarge(this.location, this.maxBytes);
      const stamp = `${info.mtimeMs}:${info.size}:${info.ino}`;
      if (since !== undefined && this.seen?.stamp === stamp && this.seen.version === since) return 'unchanged';
      const bytes = await readFile(this.location);
      if (bytes.length > this.maxBytes) throw tooLarge(this.location, this.maxBytes);
      const version = sha256(bytes);
      this.seen = { stamp, version };
      return version === since ? 'unchanged' : { text: decode(bytes, this.location), version, format: formatOf(this.location) };
    } catch (err) {
      if (err instanceof TableSourceError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'not a file' : firstLine(err);
      throw new TableSourceError(`${this.location}: ${why}`);
    }
  }
}

/** Conditional GET: the ETag (or, without one, the body's hash) is the version; 304 is unchanged. Redirects are not followed. */
export class HttpTableSource implements TableSource {
  readonly location: string;

  constructor(
    private readonly url: URL,
    private readonly ca: string | Buffer | undefined,
    private readonly timeoutMs: number,
    private readonly maxBytes: number,
  ) {
    this.location = url.href;
  }

  async read(since?: string): Promise<TableText | 'unchanged'> {
    const res = await this.get(since);
    try {
      if (res.statusCode === 304) return 'unchanged';
      if (res.statusCode !== 200) {
        const where = res.statusCode! >= 300 && res.statusCode! < 400 && res.headers.location ? `: redirected to ${res.headers.location}; set engines.jobs.table to where the table is` : '';
        throw new TableSourceError(`${this.location}: ${res.statusCode} ${res.statusMessage ?? ''}`.trimEnd() + where);
      }
      const bytes = await this.body(res);
      const version = typeof res.headers.etag === 'string' ? res.headers.etag : sha256(bytes);
      return version === since ? 'unchanged' : { text: decode(bytes, this.location), version, format: formatOf(this.url.pathname) };
    } finally {
      res.resume();
    }
  }

  private get(since: string | undefined): Promise<IncomingMessage> {
    const request = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(this.url, { headers: { accept: 'text/csv, application/yaml, text/plain, */*', ...(since?.startsWith('"') || since?.startsWith('W/') ? { 'if-none-match': since } : {}) }, ...(this.ca !== undefined && { ca: this.ca }), timeout: this.timeoutMs }, resolve);
      req.on('timeout', () => req.destroy(new TableSourceError(`${this.location}: no answer within ${this.timeoutMs / 1000}s`)));
      req.on('error', (err) => reject(err instanceof TableSourceError ? err : new TableSourceError(`${this.location}: ${describeNetError(err)}`)));
      req.end();
    });
  }

  private body(res: IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.maxBytes) res.destroy(tooLarge(this.location, this.maxBytes));
        else chunks.push(chunk);
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', (err) => reject(err instanceof TableSourceError ? err : new TableSourceError(`${this.location}: ${describeNetError(err)}`)));
    });
  }
}

function describeNetError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND') return 'the host name does not resolve';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) return `TLS: ${firstLine(err)} (trust its CA with NODE_EXTRA_CA_CERTS)`;
  return firstLine(err);
}

/** GetObject with If-None-Match: the object's ETag is the version, 304 is unchanged. */
export class S3TableSource implements TableSource {
  private readonly where: { bucket: string; key: string };

  constructor(
    readonly location: string,
    private readonly client: S3Client,
    private readonly timeoutMs: number,
    private readonly maxBytes: number,
  ) {
    this.where = parseS3Url(location, 'engines.jobs.table');
    if (this.where.key === '') throw new ConfigError(`engines.jobs.table: ${location} names a bucket, not an object (s3://bucket/key)`);
  }

  async read(since?: string): Promise<TableText | 'unchanged'> {
    let bytes: Uint8Array;
    let version: string;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.where.bucket, Key: this.where.key, ...(since !== undefined && { IfNoneMatch: since }) }), { abortSignal: AbortSignal.timeout(this.timeoutMs * 2) });
      if ((out.ContentLength ?? 0) > this.maxBytes) {
        (out.Body as { destroy?: () => void } | undefined)?.destroy?.();
        throw tooLarge(this.location, this.maxBytes);
      }
      bytes = (await out.Body?.transformToByteArray()) ?? new Uint8Array();
      if (bytes.length > this.maxBytes) throw tooLarge(this.location, this.maxBytes);
      version = out.ETag ?? sha256(bytes);
    } catch (err) {
      if (s3Status(err) === 304) return 'unchanged';
      if (err instanceof TableSourceError) throw err;
      throw new TableSourceError(describeS3Error(err, this.location));
    }
    return version === since ? 'unchanged' : { text: decode(bytes, this.location), version, format: formatOf(this.where.key) };
  }
}

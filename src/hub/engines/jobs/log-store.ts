import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { writePrivateFile } from '../../../shared/private-file.js';
import type { S3Settings } from './config.js';
import { JOB_NAME, type LogStore, type Run } from './model.js';
import { describeS3Error, parseS3Url, s3Client, s3Status } from './s3.js';

/**
 * Where finished runs' logs are kept (`engines.jobs.logs`): a directory (default
 * `<stateDir>/job-logs`) or under an s3://bucket/prefix. One object per run, `{job}-{id}.log`.
 */

export class LogStoreError extends Error {
  override name = 'LogStoreError';
}

const RUN_ID = /^[0-9a-f]{10}$/;

/** The run's log name; refuses anything that could leave the store's directory or prefix. */
export function logName(run: Pick<Run, 'id' | 'job'>): string {
  if (!RUN_ID.test(run.id) || !JOB_NAME.test(run.job)) throw new LogStoreError(`not a run: job "${String(run.job).slice(0, 80)}", id "${String(run.id).slice(0, 40)}"`);
  return `${run.job}-${run.id}.log`;
}

export function openLogStore(location: string | undefined, stateDir: string, s3: S3Settings): LogStore {
  if (location?.startsWith('s3://')) {
    const { bucket, key } = parseS3Url(location, 'engines.jobs.logs');
    return new S3LogStore(s3Client(s3), bucket, key.replace(/\/+$/, ''));
  }
  return new DirLogStore(location ?? join(stateDir, 'job-logs'));
}

/** Files of mode 0600 in a 0700 directory, each written whole (temp file, fsync, rename) or not at all. */
export class DirLogStore implements LogStore {
  constructor(readonly dir: string) {}

  async put(run: Run, text: string): Promise<string> {
    const file = join(this.dir, logName(run));
    try {
      writePrivateFile(file, text);
    } catch (err) {
      throw new LogStoreError(`cannot keep the logs of run ${run.id} in ${this.dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return file;
  }

  async get(run: Run): Promise<string | undefined> {
    try {
      return await readFile(join(this.dir, logName(run)), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new LogStoreError(`cannot read the logs of run ${run.id} in ${this.dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }

  async delete(run: Run): Promise<void> {
    await rm(join(this.dir, logName(run)), { force: true });
  }
}

export class S3LogStore implements LogStore {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  private key(run: Run): string {
    return this.prefix === '' ? logName(run) : `${this.prefix}/${logName(run)}`;
  }

  private url(run: Run): string {
    return `s3://${this.bucket}/${this.key(run)}`;
  }

  async put(run: Run, text: string): Promise<string> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(run), Body: text, ContentType: 'text/plain; charset=utf-8' }));
    } catch (err) {
      throw new LogStoreError(describeS3Error(err, this.url(run)));
    }
    return this.url(run);
  }

  async get(run: Run): Promise<string | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(run) }));
      return (await out.Body?.transformToString('utf-8')) ?? '';
    } catch (err) {
      if ((err as Error).name === 'NoSuchKey' || (s3Status(err) === 404 && (err as Error).name !== 'NoSuchBucket')) return undefined;
      throw new LogStoreError(describeS3Error(err, this.url(run)));
    }
  }

  async delete(run: Run): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(run) }));
    } catch (err) {
      throw new LogStoreError(describeS3Error(err, this.url(run)));
    }
  }
}

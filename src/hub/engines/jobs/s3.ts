import { readFileSync } from 'node:fs';
import { S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { ConfigError } from '../../../shared/config-file.js';
import { firstLine } from '../../../shared/startup.js';
import { S3_URL, type S3Settings } from './config.js';

/** The jobs engine's S3 access: one client built from `engines.jobs.s3`, locations, and errors in one line. */

export type S3Location = { bucket: string; key: string };

/** `s3://bucket/key` → its parts (the key may be '' for a bucket's root, as a log prefix). */
export function parseS3Url(url: string, configKey: string): S3Location {
  if (!S3_URL.test(url)) throw new ConfigError(`${configKey}: "${url}" is not an s3://bucket/key location`);
  const rest = url.slice('s3://'.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? { bucket: rest, key: '' } : { bucket: rest.slice(0, slash), key: rest.slice(slash + 1) };
}

/** Bounds every S3 request: a stalled store answers "timed out", it does not hang a reload. */
export const S3_TIMEOUT_MS = 10_000;

/**
 * A client for `settings`: endpoint, region and path style as set (MinIO needs
 * `forcePathStyle`), credentials from `credentialsFile` (`<id>:<secret>`) or else the SDK's
 * default chain (environment, ~/.aws, instance role).
 */
export function s3Client(settings: S3Settings, timeoutMs = S3_TIMEOUT_MS): S3Client {
  // pushfleet runs on Node 20, and the locked SDK does too; its notice that later releases will
  // not is for whoever upgrades it (package.json), not for every `jobs check` on stderr.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    ...(settings.endpoint !== undefined && { endpoint: settings.endpoint }),
    // The SDK refuses to sign without a region; S3-compatible stores mostly ignore it.
    region: settings.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    forcePathStyle: settings.forcePathStyle,
    ...(settings.credentialsFile !== undefined && { credentials: readCredentials(settings.credentialsFile) }),
    requestHandler: { connectionTimeout: timeoutMs, requestTimeout: timeoutMs },
    maxAttempts: 2,
  });
}

function readCredentials(file: string): { accessKeyId: string; secretAccessKey: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`engines.jobs.s3.credentialsFile: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? firstLine(err)}`);
  }
  const m = /^([^:\s]+):(\S+)$/.exec(text.trim());
  if (!m) throw new ConfigError(`engines.jobs.s3.credentialsFile: ${file} must hold one line <access key id>:<secret access key>`);
  return { accessKeyId: m[1]!, secretAccessKey: m[2]! };
}

/** The HTTP status of an S3 answer that was an error, if it came from the store. */
export function s3Status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** One line a person can act on, for any failure of a request about `location`. */
export function describeS3Error(err: unknown, location: string): string {
  const name = (err as Error).name;
  if (name === 'TimeoutError' || name === 'AbortError' || /timed? ?out/i.test((err as Error).message ?? '')) return `${location}: the S3 store did not answer in time`;
  if (err instanceof S3ServiceException) {
    const status = s3Status(err);
    const known: Record<string, string> = {
      NoSuchBucket: 'no such bucket',
      NoSuchKey: 'no such object',
      NotFound: 'no such object',
      AccessDenied: 'access denied (403): check the credentials and the bucket policy',
      Forbidden: 'access denied (403): check the credentials and the bucket policy',
      InvalidAccessKeyId: 'the access key id is not known to the store (403)',
      SignatureDoesNotMatch: 'the secret access key is wrong (403)',
    };
    return `${location}: ${known[name] ?? `${name}${status !== undefined ? ` (${status})` : ''}: ${firstLine(err)}`}`;
  }
  const code = (err as NodeJS.ErrnoException).code;
  return `${location}: ${code === 'ECONNREFUSED' ? 'the S3 store refused the connection' : code === 'ENOTFOUND' ? 'the S3 store’s host name does not resolve' : firstLine(err)}`;
}

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import S3rver from 's3rver';
import type { S3Settings } from '../../src/hub/engines/jobs/config.js';
import type { Cleanup } from './cleanup.js';
import { freePort } from './ports.js';

/** s3rver's one account; it checks every request's signature against it. */
export const S3_KEY = { id: 'S3RVER', secret: 'S3RVER' };

/**
 * A local S3-compatible server (s3rver, in-process, files in a temp dir) on a free port, with
 * `buckets` made, and the settings and credentials file a hub config would name.
 */
export async function startS3(cleanup: Cleanup, buckets: string[]): Promise<{ endpoint: string; settings: S3Settings; credentialsFile: string }> {
  const dir = cleanup.tempDir('pushfleet-s3-');
  const port = await freePort();
  const server = new S3rver({ address: '127.0.0.1', port, silent: true, directory: join(dir, 'data'), configureBuckets: buckets.map((name) => ({ name, configs: [] })) });
  await server.run();
  cleanup.defer(() => server.close());
  const credentialsFile = join(dir, 's3-credentials');
  writeFileSync(credentialsFile, `${S3_KEY.id}:${S3_KEY.secret}\n`, { mode: 0o600 });
  const endpoint = `http://127.0.0.1:${port}`;
  return { endpoint, credentialsFile, settings: { endpoint, region: 'us-east-1', forcePathStyle: true, credentialsFile } };
}

import { readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Run } from '../../src/hub/engines/jobs/model.js';
import { DirLogStore, LogStoreError, openLogStore } from '../../src/hub/engines/jobs/log-store.js';
import { s3Client } from '../../src/hub/engines/jobs/s3.js';
import { openTableSource, TableSourceError, type SourceOptions } from '../../src/hub/engines/jobs/table-source.js';
import { ConfigError } from '../../src/shared/config-file.js';
import { Cleanup } from '../support/cleanup.js';
import { runProcess, show } from '../support/run-process.js';
import { startS3 } from '../support/s3-server.js';

const CSV = 'job_name,mqtt_topic,image\nsort,lab/upload,sorter:1\n';
const noS3: SourceOptions = { s3: { forcePathStyle: false } };

function run(over: Partial<Run> = {}): Run {
  return { id: '0123456789', job: 'sort', name: 'sort-0123456789', executor: 'kubernetes', topic: 'lab/upload', payload: '{}', params: {}, status: 'succeeded', createdAt: 0, ...over };
}

/** A self-signed certificate for 127.0.0.1 (its own CA), made by openssl. */
async function selfSigned(dir: string): Promise<{ cert: Buffer; key: Buffer }> {
  const r = await runProcess('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '2'], { cwd: dir });
  if (r.code !== 0) throw new Error(`openssl\n${show(r)}`);
  return { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
}

describe('jobs table sources', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function listen(handler: RequestListener, tls?: { cert: Buffer; key: Buffer }): Promise<string> {
    const server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.defer(() => new Promise((resolve) => server.close(resolve)));
    cleanup.defer(() => server.closeAllConnections());
    return `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  it('a file: its content hash is the version; a touch is no change, an edit is; missing, oversized or binary files fail in one line', async () => {
    const dir = cleanup.tempDir('pushfleet-table-');
    const file = join(dir, 'jobs.csv');
    writeFileSync(file, CSV);
    const source = openTableSource(file, noS3);
    const first = await source.read();
    expect(first).toEqual({ text: CSV, version: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), format: 'csv' });
    const version = (first as { version: string }).version;
    expect(await source.read(version)).toBe('unchanged');
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect(await source.read(version)).toBe('unchanged');
    writeFileSync(file, CSV.replace('sorter:1', 'sorter:2'));
    const edited = await source.read(version);
    expect(edited).toMatchObject({ text: expect.stringContaining('sorter:2') });
    expect((edited as { version: string }).version).not.toBe(version);

    writeFileSync(join(dir, 'jobs.yml'), '- {job_name: a, mqtt_topic: b, image: c}\n');
    expect(await openTableSource(join(dir, 'jobs.yml'), noS3).read()).toMatchObject({ format: 'yaml' });
    await expect(openTableSource(join(dir, 'gone.csv'), noS3).read()).rejects.toThrow(new TableSourceError(`${join(dir, 'gone.csv')}: no such file`));
    await expect(openTableSource(dir, noS3).read()).rejects.toThrow(`${dir}: not a file`);
    await expect(openTableSource(file, { ...noS3, maxBytes: 10 }).read()).rejects.toThrow(`${file}: the jobs table is larger than 10 bytes`);
    writeFileSync(join(dir, 'bin.csv'), Buffer.from([0x6a, 0xff, 0xfe, 0x0a]));
    await expect(openTableSource(join(dir, 'bin.csv'), noS3).read()).rejects.toThrow('the jobs table is not UTF-8 text');
  });

  it('https: ETag and If-None-Match (304 is unchanged), a trusted self-signed CA, and 403/404/TLS/timeout errors in one line', async () => {
    const tls = await selfSigned(cleanup.tempDir('pushfleet-tls-'));
    let body = CSV;
    let etag = '"v1"';
    const seen: (string | undefined)[] = [];
    const base = await listen((req, res) => {
      seen.push(req.headers['if-none-match']);
      if (req.url === '/forbidden.csv') return void res.writeHead(403).end('no');
      if (req.url === '/moved.csv') return void res.writeHead(302, { location: 'http://elsewhere/jobs.csv' }).end();
      if (req.url === '/stall.csv') return; // never answers
      if (req.url === '/untagged.yaml') return void res.writeHead(200).end('- {job_name: a, mqtt_topic: b, image: c}\n');
      if (req.url !== '/jobs.csv') return void res.writeHead(404).end();
      if (req.headers['if-none-match'] === etag) return void res.writeHead(304).end();
      res.writeHead(200, { etag, 'content-type': 'text/csv' }).end(body);
    }, tls);
    const options = { ...noS3, ca: tls.cert, timeoutMs: 500 };
    const source = openTableSource(`${base}/jobs.csv`, options);
    expect(await source.read()).toEqual({ text: CSV, version: '"v1"', format: 'csv' });
    expect(await source.read('"v1"')).toBe('unchanged');
    expect(seen).toEqual([undefined, '"v1"']);
    body = CSV.replace('sorter:1', 'sorter:2');
    etag = '"v2"';
    expect(await source.read('"v1"')).toEqual({ text: body, version: '"v2"', format: 'csv' });

    // Without an ETag the body's hash stands in for it.
    const untagged = openTableSource(`${base}/untagged.yaml`, options);
    const got = (await untagged.read()) as { version: string; format: string };
    expect(got).toMatchObject({ version: expect.stringMatching(/^sha256:/), format: 'yaml' });
    expect(await untagged.read(got.version)).toBe('unchanged');

    await expect(openTableSource(`${base}/forbidden.csv`, options).read()).rejects.toThrow(`${base}/forbidden.csv: 403 Forbidden`);
    await expect(openTableSource(`${base}/nothing.csv`, options).read()).rejects.toThrow(`${base}/nothing.csv: 404 Not Found`);
    await expect(openTableSource(`${base}/moved.csv`, options).read()).rejects.toThrow(`${base}/moved.csv: 302 Found: redirected to http://elsewhere/jobs.csv; set engines.jobs.table to where the table is`);
    await expect(openTableSource(`${base}/stall.csv`, options).read()).rejects.toThrow(`${base}/stall.csv: no answer within 0.5s`);
    await expect(openTableSource(`${base}/jobs.csv`, noS3).read()).rejects.toThrow(/^https:\/\/127\.0\.0\.1:\d+\/jobs\.csv: TLS: self-signed certificate \(trust its CA with NODE_EXTRA_CA_CERTS\)$/);
  });

  it('http only to localhost; other schemes refused at the config', async () => {
    const base = await listen((_req, res) => void res.writeHead(200, { etag: '"x"' }).end(CSV));
    expect(await openTableSource(`${base}/jobs.csv`, noS3).read()).toMatchObject({ version: '"x"' });
    expect(() => openTableSource('http://tables.example/jobs.csv', noS3)).toThrow(new ConfigError('engines.jobs.table: http://tables.example/jobs.csv is plain http; use https:// (http only to localhost)'));
    expect(() => openTableSource('ftp://x/jobs.csv', noS3)).toThrow('engines.jobs.table: "ftp://x/jobs.csv" is neither a file path, an https:// URL nor an s3://bucket/key');
    await expect(openTableSource('http://127.0.0.1:1/jobs.csv', noS3).read()).rejects.toThrow('http://127.0.0.1:1/jobs.csv: connection refused');
  });

  it('s3: GetObject with If-None-Match sees an ETag change; no such bucket/object and bad credentials fail in one line', async () => {
    const s3 = await startS3(cleanup, ['tables']);
    const client = s3Client(s3.settings);
    const put = (key: string, body: string) => client.send(new PutObjectCommand({ Bucket: 'tables', Key: key, Body: body }));
    await put('services/jobs.csv', CSV);
    const source = openTableSource('s3://tables/services/jobs.csv', { s3: s3.settings });
    const first = (await source.read()) as { text: string; version: string; format: string };
    expect(first).toMatchObject({ text: CSV, format: 'csv' });
    expect(first.version).toMatch(/^"[0-9a-f]{32}"$/);
    expect(await source.read(first.version)).toBe('unchanged');
    await put('services/jobs.csv', CSV.replace('sorter:1', 'sorter:2'));
    const second = (await source.read(first.version)) as { text: string; version: string };
    expect(second.text).toContain('sorter:2');
    expect(second.version).not.toBe(first.version);
    await put('jobs.yaml', '- {job_name: a, mqtt_topic: b, image: c}\n');
    expect(await openTableSource('s3://tables/jobs.yaml', { s3: s3.settings }).read()).toMatchObject({ format: 'yaml' });

    await expect(openTableSource('s3://no-bucket/jobs.csv', { s3: s3.settings }).read()).rejects.toThrow('s3://no-bucket/jobs.csv: no such bucket');
    await expect(openTableSource('s3://tables/missing.csv', { s3: s3.settings }).read()).rejects.toThrow('s3://tables/missing.csv: no such object');
    const dir = cleanup.tempDir('pushfleet-creds-');
    writeFileSync(join(dir, 'wrong-id'), 'SOMEONE:S3RVER');
    writeFileSync(join(dir, 'garbled'), 'just-a-secret');
    await expect(openTableSource('s3://tables/jobs.yaml', { s3: { ...s3.settings, credentialsFile: join(dir, 'wrong-id') } }).read()).rejects.toThrow('s3://tables/jobs.yaml: the access key id is not known to the store (403)');
    expect(() => openTableSource('s3://tables/jobs.yaml', { s3: { ...s3.settings, credentialsFile: join(dir, 'garbled') } })).toThrow(`engines.jobs.s3.credentialsFile: ${join(dir, 'garbled')} must hold one line <access key id>:<secret access key>`);
    expect(() => openTableSource('s3://tables/jobs.yaml', { s3: { ...s3.settings, credentialsFile: join(dir, 'absent') } })).toThrow(`engines.jobs.s3.credentialsFile: cannot read ${join(dir, 'absent')}: ENOENT`);
    expect(() => openTableSource('s3://tables', { s3: s3.settings })).toThrow('engines.jobs.table: s3://tables names a bucket, not an object (s3://bucket/key)');
  });

  it('s3: a store that refuses (403 AccessDenied, as S3 writes it) fails in one line', async () => {
    // s3rver does not check SigV4 signatures or policies, so a plain server gives S3's own 403 answer.
    const endpoint = await listen((_req, res) => void res.writeHead(403, { 'content-type': 'application/xml' }).end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>'));
    const dir = cleanup.tempDir('pushfleet-creds-');
    writeFileSync(join(dir, 'creds'), 'AKIDEXAMPLE:secret');
    const source = openTableSource('s3://tables/jobs.csv', { s3: { endpoint, forcePathStyle: true, credentialsFile: join(dir, 'creds') } });
    await expect(source.read()).rejects.toThrow('s3://tables/jobs.csv: access denied (403): check the credentials and the bucket policy');
  });

  it('s3: a store that accepts the connection and never answers times out', async () => {
    const sockets: Socket[] = [];
    const silent = createTcpServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanup.defer(() => new Promise((resolve) => silent.close(resolve)));
    cleanup.defer(() => sockets.forEach((s) => s.destroy()));
    const endpoint = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
    const dir = cleanup.tempDir('pushfleet-creds-');
    writeFileSync(join(dir, 'creds'), 'S3RVER:S3RVER');
    const source = openTableSource('s3://tables/jobs.csv', { s3: { endpoint, forcePathStyle: true, credentialsFile: join(dir, 'creds') }, timeoutMs: 300 });
    await expect(source.read()).rejects.toThrow('s3://tables/jobs.csv: the S3 store did not answer in time');
  });
});

describe('jobs log stores', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('a directory: 0600 files written whole, read back, deleted; a run id that is not one is refused', async () => {
    const stateDir = cleanup.tempDir('pushfleet-state-');
    const store = openLogStore(undefined, stateDir, { forcePathStyle: false });
    expect(store).toBeInstanceOf(DirLogStore);
    const where = await store.put(run(), 'line 1\nline 2\n');
    expect(where).toBe(join(stateDir, 'job-logs', 'sort-0123456789.log'));
    expect(statSync(where).mode & 0o777).toBe(0o600);
    expect(statSync(join(stateDir, 'job-logs')).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(stateDir, 'job-logs'))).toEqual(['sort-0123456789.log']);
    expect(await store.get(run())).toBe('line 1\nline 2\n');
    expect(await store.get(run({ id: 'abcdefabcd' }))).toBeUndefined();
    await store.put(run(), 'replaced');
    expect(await store.get(run())).toBe('replaced');
    await store.delete(run());
    expect(await store.get(run())).toBeUndefined();
    await store.delete(run());
    await expect(store.put(run({ id: '../../x' }), 'x')).rejects.toThrow(new LogStoreError('not a run: job "sort", id "../../x"'));
    await expect(store.get(run({ job: '../etc' }))).rejects.toThrow(LogStoreError);
    expect(readdirSync(join(stateDir, 'job-logs'))).toEqual([]);
  });

  it('a directory that cannot be written fails in one line', async () => {
    const dir = cleanup.tempDir('pushfleet-state-');
    writeFileSync(join(dir, 'file'), '');
    const store = openLogStore(join(dir, 'file', 'logs'), dir, { forcePathStyle: false });
    await expect(store.put(run(), 'x')).rejects.toThrow(`cannot keep the logs of run 0123456789 in ${join(dir, 'file', 'logs')}: ENOTDIR`);
  });

  it('s3://bucket/prefix: put, get, delete; a missing bucket fails in one line', async () => {
    const s3 = await startS3(cleanup, ['logs']);
    const store = openLogStore('s3://logs/services/mqtt_job_listener/logs/', '/unused', s3.settings);
    expect(await store.put(run(), 'pod output\n')).toBe('s3://logs/services/mqtt_job_listener/logs/sort-0123456789.log');
    expect(await store.get(run())).toBe('pod output\n');
    expect(await store.get(run({ id: 'ffffffffff' }))).toBeUndefined();
    await store.delete(run());
    expect(await store.get(run())).toBeUndefined();
    const atRoot = openLogStore('s3://logs', '/unused', s3.settings);
    expect(await atRoot.put(run(), 'x')).toBe('s3://logs/sort-0123456789.log');
    await expect(openLogStore('s3://nowhere/logs', '/unused', s3.settings).put(run(), 'x')).rejects.toThrow('s3://nowhere/logs/sort-0123456789.log: no such bucket');
  });
});

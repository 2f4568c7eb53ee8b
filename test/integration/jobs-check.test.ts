import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { s3Client } from '../../src/hub/engines/jobs/s3.js';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';
import { runProcess, show } from '../support/run-process.js';
import { startS3 } from '../support/s3-server.js';

const SEED = new URL('../fixtures/jobs/seed-jobs.csv', import.meta.url);

describe('pushfleet jobs check', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  function hubConfig(dir: string, jobs: object): string {
    const file = join(dir, 'hub.yaml');
    writeFileSync(file, JSON.stringify({ stateDir: dir, engines: { jobs } }));
    return file;
  }

  it('passes the seed table as-is, reading engines.jobs.table from the hub config', async () => {
    const dir = cleanup.tempDir('pushfleet-jobs-check-');
    const r = await runCli(['jobs', 'check', '-c', hubConfig(dir, { table: SEED.pathname })]);
    expect(r).toEqual({ code: 0, stdout: `${SEED.pathname} (csv): 3 of 3 rows valid\n`, stderr: '' });
  });

  it('lists every bad row with its line and reason, exit 1; the prefix of the config decides what is a cycle', async () => {
    const dir = cleanup.tempDir('pushfleet-jobs-check-');
    const table = join(dir, 'jobs.csv');
    writeFileSync(table, [readFileSync(SEED, 'utf8').trimEnd(), 'bad,lab/#/x,img,,,,,,,,1', 'loop,chain/job_complete/loop,img,,,,,,,,1', 'spike-sort,lab/y,img,,,,,,,,1', ''].join('\r\n'));
    const r = await runCli(['jobs', 'check', '-c', hubConfig(dir, { prefix: 'chain' }), '--table', table]);
    expect(r.stdout).toBe(
      [
        'line 5: bad: mqtt_topic: not an MQTT topic filter ("+" and "#" only as whole levels, "#" last)',
        'line 6: loop: cycle: loop → loop',
        'line 7: spike-sort: duplicate job_name (first on line 2)',
        `${table} (csv): 3 of 6 rows valid, 3 refused`,
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(1);
  });

  it('exit 2 with one line when the table cannot be read or is not set', async () => {
    const dir = cleanup.tempDir('pushfleet-jobs-check-');
    const missing = join(dir, 'missing.csv');
    expect(await runCli(['jobs', 'check', '--table', missing])).toEqual({ code: 2, stdout: '', stderr: `pushfleet: ${missing}: no such file\n` });
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'job_name: a\n');
    expect(await runCli(['jobs', 'check', '--table', broken])).toEqual({ code: 2, stdout: '', stderr: `pushfleet: ${broken}: line 1: a YAML jobs table is a list of rows (- job_name: …)\n` });
    const config = hubConfig(dir, {});
    expect(await runCli(['jobs', 'check', '-c', config])).toEqual({ code: 2, stdout: '', stderr: `pushfleet: engines.jobs.table is not set in ${config}: set it or pass --table\n` });
    const badKey = hubConfig(dir, { table: missing, tabel: 'x' });
    const r = await runCli(['jobs', 'check', '-c', badKey]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pushfleet: invalid config .*hub\.yaml:\n  engines\.jobs\.tabel: unknown key\n$/);
  });

  it('reads an https table whose CA NODE_EXTRA_CA_CERTS trusts, and an s3 table with engines.jobs.s3', async () => {
    const dir = cleanup.tempDir('pushfleet-jobs-check-');
    const made = await runProcess('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '2'], { cwd: dir });
    if (made.code !== 0) throw new Error(show(made));
    const server = createServer({ cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) }, (_req, res) => void res.writeHead(200, { etag: '"1"' }).end('- {job_name: a, mqtt_topic: lab/a, executor: agent, action: backup}\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.defer(() => new Promise((resolve) => server.close(resolve)));
    const url = `https://127.0.0.1:${(server.address() as { port: number }).port}/jobs.yaml`;
    expect(await runCli(['jobs', 'check', '--table', url], { NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') })).toEqual({ code: 0, stdout: `${url} (yaml): 1 of 1 row valid\n`, stderr: '' });
    const untrusted = await runCli(['jobs', 'check', '--table', url]);
    expect(untrusted).toEqual({ code: 2, stdout: '', stderr: `pushfleet: ${url}: TLS: self-signed certificate (trust its CA with NODE_EXTRA_CA_CERTS)\n` });

    const s3 = await startS3(cleanup, ['braingeneers']);
    await s3Client(s3.settings).send(new PutObjectCommand({ Bucket: 'braingeneers', Key: 'services/mqtt_job_listener/jobs.csv', Body: readFileSync(SEED) }));
    const config = hubConfig(dir, { table: 's3://braingeneers/services/mqtt_job_listener/jobs.csv', s3: s3.settings });
    expect(await runCli(['jobs', 'check', '-c', config])).toEqual({ code: 0, stdout: 's3://braingeneers/services/mqtt_job_listener/jobs.csv (csv): 3 of 3 rows valid\n', stderr: '' });
    expect(await runCli(['jobs', 'check', '-c', config, '--table', 's3://braingeneers/other.csv'])).toEqual({ code: 2, stdout: '', stderr: 'pushfleet: s3://braingeneers/other.csv: no such object\n' });
  });

  it('has --help', async () => {
    const r = await runCli(['jobs', 'check', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: pushfleet jobs check [options]');
    expect((await runCli(['jobs', '--help'])).stdout).toContain('check [options]');
  });
});

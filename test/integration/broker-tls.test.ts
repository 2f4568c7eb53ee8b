import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type IClientOptions } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../src/shared/messages.js';
import { connectMqtt } from '../../src/shared/mqtt-connection.js';
import { agentStatusTopic } from '../../src/shared/topics.js';
import { addBrokerUser, HARNESS, usersFileFor } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';
import { freePort } from '../support/ports.js';
import { RestartableHub } from '../support/restartable-hub.js';
import { runProcess, show } from '../support/run-process.js';

async function openssl(dir: string, ...args: string[]): Promise<void> {
  const r = await runProcess('openssl', args, { cwd: dir });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}\n${show(r)}`);
}

/** A CA, a server certificate for 127.0.0.1 it signed, and client certificates named by their CN. */
async function makeCerts(dir: string) {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(dir, 'req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=pushfleet test CA', '-days', '2');
  await openssl(dir, 'req', '-x509', ...key, '-keyout', 'rogue-ca.key', '-out', 'rogue-ca.pem', '-subj', '/CN=rogue CA', '-days', '2');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  const signed = async (name: string, cn: string, ca = 'ca', ext: string[] = []) => {
    await openssl(dir, 'req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    await openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', ...ext);
  };
  await signed('server', '127.0.0.1', 'ca', ['-extfile', 'server.ext']);
  await signed('web-1', 'web-1');
  await signed('forged', HARNESS, 'rogue-ca');
  const file = (name: string) => readFileSync(join(dir, name));
  return { dir, file };
}

type Outcome = { connected: true; client: mqtt.MqttClient } | { connected: false; code: number | string };

async function tryTls(cleanup: Cleanup, url: string, opts: IClientOptions): Promise<Outcome> {
  try {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    cleanup.defer(() => client.endAsync(true));
    return { connected: true, client };
  } catch (err) {
    return { connected: false, code: (err as { code?: number | string }).code ?? String(err) };
  }
}

describe('the embedded broker over TLS (broker.tls)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('takes the same accounts over mqtts, and a client certificate from broker.tls.ca logs in as the user its CN names', async () => {
    const certs = await makeCerts(cleanup.tempDir('pushfleet-tls-'));
    const tlsPort = await freePort();
    const hub = await RestartableHub.create(cleanup, undefined, { broker: { tls: { port: tlsPort, cert: join(certs.dir, 'server.pem'), key: join(certs.dir, 'server.key'), ca: join(certs.dir, 'ca.pem') } } });
    await addBrokerUser(usersFileFor(hub.mqttUrl)!, 'web-1', 'agent');
    await hub.start();
    const listening = hub.proc!.lines.find((l) => l.msg === 'embedded MQTT broker listening')!;
    expect(listening).toMatchObject({ tlsPort, clientCertificates: true });

    const { username, password } = new URL(hub.mqttUrl);
    const url = `mqtts://127.0.0.1:${tlsPort}`;
    const ca = certs.file('ca.pem');
    const withPassword = await tryTls(cleanup, url, { ca, username, password });
    expect(withPassword.connected).toBe(true);
    expect(await tryTls(cleanup, url, { ca })).toEqual({ connected: false, code: 5 });
    expect(await tryTls(cleanup, url, { ca, username, password: 'wrong-password-tls' })).toEqual({ connected: false, code: 4 });
    // A server certificate nobody vouches for is refused by the client, as it should be.
    expect((await tryTls(cleanup, url, { username, password })).connected).toBe(false);

    const asWeb1 = await tryTls(cleanup, url, { ca, cert: certs.file('web-1.pem'), key: certs.file('web-1.key') });
    expect(asWeb1.connected).toBe(true);
    const web1 = (asWeb1 as { client: mqtt.MqttClient }).client;
    const status = (agent: string) => JSON.stringify({ v: SCHEMA_VERSION, agent, state: 'online', labels: {}, version: '0', startedAt: null, at: new Date().toISOString() });
    await web1.publishAsync(agentStatusTopic('web-1'), status('web-1'), { qos: 1, retain: true });
    // It is web-1 (an agent), not anyone: another agent's topic closes its connection.
    const closed = new Promise<void>((resolve) => web1.once('close', () => resolve()));
    web1.publish(agentStatusTopic('web-2'), status('web-2'), { qos: 1 });
    await closed;
    // A certificate from another CA names no one, whatever its CN.
    expect(await tryTls(cleanup, url, { ca, cert: certs.file('forged.pem'), key: certs.file('forged.key') })).toEqual({ connected: false, code: 5 });

    // The CLI over mqtts, with the CA from its config.
    const cli = join(certs.dir, 'cli.yaml');
    writeFileSync(cli, `mqtt:\n  url: ${url}\n  username: ${username}\n  password: ${password}\n  tls:\n    ca: ${join(certs.dir, 'ca.pem')}\n`);
    const r = await runCli(['status', '-c', cli]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/hub: online/);
    // Our own TLS socket (not mqtt.connect's): a broker certificate from another CA is refused,
    // as an error of the connect (a command exits with it), not an uncaught one.
    const rogue = connectMqtt({ url, username, password, keepalive: 30, tls: { ca: join(certs.dir, 'rogue-ca.pem'), rejectUnauthorized: true } }, { timeoutMs: 5000 });
    await expect(rogue).rejects.toMatchObject({ code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    const trusted = await connectMqtt({ url, username, password, keepalive: 30, tls: { ca: join(certs.dir, 'ca.pem'), rejectUnauthorized: true } }, { timeoutMs: 5000 });
    cleanup.defer(() => trusted.endAsync(true));
    expect(trusted.connected).toBe(true);
  });

  it('refuses to start when a TLS file is missing, naming the key', async () => {
    const dir = cleanup.tempDir('pushfleet-tls-');
    const config = join(dir, 'hub.yaml');
    writeFileSync(config, JSON.stringify({ http: { host: '127.0.0.1', port: 0 }, broker: { port: await freePort(), tls: { port: await freePort(), cert: join(dir, 'missing.pem'), key: join(dir, 'missing.key') } }, webhook: { secret: 'test-webhook-secret-0123456789' }, stateDir: dir }));
    const r = await runCli(['hub', '--config', config]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`pushfleet: cannot read broker.tls.cert ${join(dir, 'missing.pem')}: ENOENT`);
  });
});

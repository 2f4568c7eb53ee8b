import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll } from 'vitest';
import { requestEngine } from '../../src/cli/mqtt-request.js';
import { SERVICES_REQUEST, ServicesReply, servicesReplyTopic, ServiceView, type ServicesRequest } from '../../src/shared/contract/services-engine-messages.js';
import { decode } from '../../src/shared/messages.js';
import { startAgentProcess } from './agent-process.js';
import { connectWhenKnown, userUrl } from './broker-users.js';
import { CliProcess, runCli } from './cli-process.js';
import type { Cleanup } from './cleanup.js';
import { liveCopies } from './overlap.js';
import { startPostgres, type PostgresServer } from './postgres.js';
import { RestartableHub } from './restartable-hub.js';
import { TcpProxy } from './tcp-proxy.js';
import { startTestHub } from './test-hub.js';
import { waitFor } from './wait.js';

/** The service fixture; found from the sources whether this runs from test/ or dist/test/. */
export const SERVICE_SCRIPT = [new URL('../fixtures/services/service.mjs', import.meta.url), new URL('../../../test/fixtures/services/service.mjs', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find(existsSync)!;

/** One agent of the fleet: a server of the services engine. `proxied`: it reaches the broker through its own TcpProxy; `deferred`: the test starts it (startAgent). */
export type ServerSpec = { id: string; maxWorkers?: number; labels?: Record<string, string>; proxied?: boolean; deferred?: boolean };

export type FleetOptions = {
  agents: readonly ServerSpec[];
  /** `engines.services` of the hub, beside the fleet's own (postgresUrl, …). */
  engine?: Record<string, unknown>;
  /** A real `pushfleet hub` process (RestartableHub, embedded broker) that a test can kill -9, instead of a hub in this process. */
  hubProcess?: boolean;
  /** The agents' `services.stopTimeout` (s): SIGTERM to SIGKILL. */
  stopTimeout?: number;
};

/** Actions every fleet agent offers: `svc` runs the fixture, `watched` the same with a 2 s watchdog. */
export const FLEET_ACTIONS = ['svc', 'watched'] as const;

export type ServicesFleet = {
  /** The file every copy of every service appends its records to (overlap.ts reads it). */
  records: string;
  /** The broker URL logged in as `harness` (role hub), for watching anything. */
  mqttUrl: string;
  /** Logged in as an operator: what `pushfleet services` and the tests' requests use. */
  operatorUrl: string;
  /** The hub's HTTP base (`http://127.0.0.1:port`). */
  httpBase: string;
  agents: Map<string, CliProcess>;
  proxies: Map<string, TcpProxy>;
  /** The hub process, when `hubProcess` was asked for. */
  hubProcess?: RestartableHub;
  /** (Re)starts agent `id` on its state dir, as the same machine; resolves once it is online. */
  startAgent(id: string): Promise<CliProcess>;
  /** One operator request over MQTT (`pushfleet/services/request`); resolves with the reply. */
  request(op: DistributiveOmit<ServicesRequest, 'v' | 'requestId' | 'by'>): Promise<ServicesReply>;
  /** Creates a service over MQTT (`svc` unless `action` says otherwise); throws on a refusal. */
  add(name: string, arg?: string, action?: string, selector?: Record<string, string>): Promise<ServiceView>;
  /** Waits until every one of `names` runs (status running), each on an agent `where` accepts. */
  waitRunning(names: readonly string[], where?: (agent: string, v: ServiceView) => boolean, timeoutMs?: number): Promise<ServiceView[]>;
  /** `pushfleet services <args> --mqtt-url <operator>` as a real CLI process. */
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** The latest retained ServiceView the hub published for `name` (undefined before one, or after it was cleared). */
  view(name: string): ServiceView | undefined;
  /** What a failed wait should show: every view, the copies ticking, each agent's last log lines. */
  explain(): string;
  /** Waits until `name`'s retained view satisfies `ok` (e.g. a status); the failure names what was seen. */
  waitForView(name: string, what: string, ok: (v: ServiceView) => boolean, timeoutMs?: number): Promise<ServiceView>;
};

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * A hub with the services engine and real agent processes as its servers, each offering the
 * fixture's actions (`svc`, `watched`) under `services:`; optionally one or more behind their own
 * TCP proxy, so a test can cut them off. Everything is cleaned up by `cleanup`.
 */
export async function startServicesFleet(cleanup: Cleanup, opts: FleetOptions): Promise<ServicesFleet> {
  const dir = cleanup.tempDir('pushfleet-services-');
  const records = join(dir, 'records.log');
  const engines = { services: { ...opts.engine } };
  let mqttUrl: string;
  let httpBase: string;
  let hubProcess: RestartableHub | undefined;
  if (opts.hubProcess) {
    hubProcess = await RestartableHub.create(cleanup, undefined, { config: { engines } });
    await hubProcess.start();
    mqttUrl = hubProcess.mqttUrl;
    httpBase = new URL(hubProcess.webhookUrl).origin;
  } else {
    const hub = await startTestHub(cleanup, 'aedes', { engines });
    mqttUrl = hub.mqttUrl;
    httpBase = `http://127.0.0.1:${hub.httpPort}`;
  }
  const operatorUrl = await userUrl(mqttUrl, 'services-op', 'operator');
  const broker = new URL(mqttUrl);

  const proxies = new Map<string, TcpProxy>();
  for (const spec of opts.agents) if (spec.proxied) proxies.set(spec.id, await TcpProxy.start(cleanup, { host: broker.hostname, port: Number(broker.port) }));
  const command = [process.execPath, SERVICE_SCRIPT];
  const env = { RECORDS: records };
  const actions = { svc: { command, env }, watched: { command, env, watchdogSec: 2 } };
  const stateDirs = new Map(opts.agents.map((s) => [s.id, join(dir, `agent-${s.id}`)]));
  const agents = new Map<string, CliProcess>();
  const startAgent = async (id: string) => {
    const spec = opts.agents.find((s) => s.id === id)!;
    const proxy = proxies.get(id);
    const agent = await startAgentProcess(cleanup, {
      id,
      mqttUrl,
      labels: spec.labels,
      stateDir: stateDirs.get(id),
      logLevel: 'info',
      actions,
      services: { actions: [...FLEET_ACTIONS], maxWorkers: spec.maxWorkers ?? 4, stopTimeout: opts.stopTimeout ?? 1 },
      ...(proxy && { via: (url: string) => proxy.urlFor(url) }),
    });
    agents.set(id, agent);
    // Online in its log is not yet a server of the engine: that is when the hub has read its status.
    await waitFor(`${id} a server of the services engine`, () => request({ op: 'servers', page: { offset: 0, limit: 1000 } }).then((r) => r.servers?.items.some((s) => s.agent === id && s.online), () => false));
    return agent;
  };

  const client: MqttClient = await connectWhenKnown(operatorUrl, { reconnectPeriod: 200 });
  cleanup.defer(() => client.endAsync(true));
  const views = new Map<string, ServiceView | undefined>();
  client.on('message', (topic, payload) => {
    const m = /^pushfleet\/services\/([^/]+)\/state$/.exec(topic);
    if (!m) return;
    const d = decode(ServiceView, payload);
    views.set(m[1]!, payload.length === 0 || !d.ok ? undefined : d.value);
  });
  await client.subscribeAsync('pushfleet/services/+/state', { qos: 1 });
  const route = { topic: SERVICES_REQUEST, replyTopic: servicesReplyTopic, reply: ServicesReply, noAnswer: 'is engines.services on?' };

  const explain = () =>
    [
      'views:',
      ...[...views].map(([n, v]) => `  ${n}: ${v ? `${v.status} g${v.generation} on ${v.current?.agent ?? '-'} r${v.current?.restarts ?? '-'}` : 'cleared'}`),
      `copies ticking: ${liveCopies(records).map((c) => `${c.name} g${c.generation} on ${c.agent}`).join(', ') || 'none'}`,
      ...[...agents].map(([id, a]) => `--- agent ${id} ---\n${a.stdout.split('\n').slice(-12).join('\n')}`),
      ...(hubProcess?.proc ? [`--- hub ---\n${hubProcess.proc.stdout.split('\n').slice(-15).join('\n')}\n${hubProcess.proc.stderr.slice(-1000)}`] : []),
    ].join('\n');
  const request = (op: DistributiveOmit<ServicesRequest, 'v' | 'requestId' | 'by'>) => requestEngine(client, route, op, 10);
  const waitForView = (name: string, what: string, ok: (v: ServiceView) => boolean, timeoutMs = 20_000) =>
    waitFor(
      () => `service ${name} ${what}; last view: ${JSON.stringify(views.get(name))}\n${explain()}`,
      () => {
        const v = views.get(name);
        return v !== undefined && ok(v) ? v : undefined;
      },
      timeoutMs,
    );
  await Promise.all(opts.agents.filter((s) => !s.deferred).map((s) => startAgent(s.id)));

  return {
    records,
    mqttUrl,
    operatorUrl,
    httpBase,
    agents,
    proxies,
    hubProcess,
    startAgent,
    request,
    async add(name, arg = '', action = 'svc', selector = {}) {
      const reply = await request({ op: 'add', service: { name, action, arg, selector } });
      if (!reply.ok || !reply.service) throw new Error(`services add ${name}: ${reply.error}`);
      return reply.service;
    },
    waitRunning: (names, where = () => true, timeoutMs = 20_000) =>
      Promise.all(names.map((n) => waitForView(n, 'running', (v) => v.status === 'running' && v.current !== undefined && where(v.current.agent, v), timeoutMs))),
    cli: (args) => runCli(['services', ...args, '--mqtt-url', operatorUrl]),
    view: (name) => views.get(name),
    explain,
    waitForView,
  };
}

/** The services engine's stores, for a describe.each: the same tests on SQLite and on PostgreSQL. */
export const SERVICE_STORES = [
  { name: 'SQLite', postgres: false },
  { name: 'PostgreSQL', postgres: true },
] as const;

/**
 * Inside a describe of one store: starts this describe's own PostgreSQL server when the store is
 * PostgreSQL (Debian's, test/support/postgres.ts) and returns what gives each test its
 * `engines.services` (a fresh database on PostgreSQL, nothing on SQLite).
 */
export function storeEngine(store: (typeof SERVICE_STORES)[number]): () => Promise<Record<string, unknown>> {
  let server: PostgresServer | undefined;
  beforeAll(async () => {
    if (store.postgres) server = await startPostgres();
  }, 60_000);
  afterAll(() => server?.stop());
  return async () => (server ? { postgresUrl: await server.database() } : {});
}

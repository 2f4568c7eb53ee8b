import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { MqttClient } from 'mqtt';
import type { Logger } from '../shared/logger.js';
import { SCHEMA_VERSION, type HubStatus, type PushMessage } from '../shared/messages.js';
import { closeMqtt, connectMqtt } from '../shared/mqtt-connection.js';
import { TopicContract } from '../shared/contract/topic-table.js';
import { redactUrl } from '../shared/mqtt-url.js';
import { readRetained } from '../shared/retained.js';
import { agentRetryTopic, HUB_STATUS } from '../shared/topics.js';
import { VERSION } from '../shared/version.js';
import { listenError, startOrUndo, type Teardown } from '../shared/startup.js';
import { lockStateDir } from '../shared/state-dir-lock.js';
import type { HubConfig } from './config.js';
import type { Refusals } from './broker/broker-access.js';
import type { LoginRefusal } from './users/login-refusal.js';
import { readTlsFiles, startEmbeddedBroker, type EmbeddedBroker } from './broker/embedded-broker.js';
import { Dispatcher } from './engines/dispatcher.js';
import { systemClock, type Publisher } from './engines/engine.js';
import { createEngines, engineNamed, servicesApiOf } from './engines/registry.js';
import type { JobsEngine } from './engines/jobs/jobs-engine.js';
import type { RolloutsEngine } from './engines/rollouts/rollouts-engine.js';
import { deliveryRecord } from './views/delivery-view.js';
import { ViewsEngine } from './views/views-engine.js';
import type { ServicesApi } from './engines/services/services-api.js';
import { createHttpServer } from './http-server.js';
import { ApiAuth } from './api/api-auth.js';
import { HubEvents } from './hub-events.js';
import { EventStreams } from './api/event-streams.js';
import { loadDashboardAssets } from './dashboard/dashboard-assets.js';
import { HeadStore } from './engines/heads/head-store.js';
import { sendPush, withdrawPushesOnConnectionLoss } from './push-publisher.js';
import { NotifyRequests } from './engines/notify/notify-engine.js';
import { Signer, signedPublisher } from './signed-publish.js';
import { SigningWorker } from './signing-worker.js';
import { resolveSigningKey } from './signing-key.js';
import { persistedSequence } from './signing-sequence.js';
import { openStateDb, stateDbFile, stateDbStartupError, type StateDb } from './state-db.js';
import { StateDirWatch } from './state-dir-watch.js';
import { TickBatch } from './tick-batch.js';
import { LiveUsers } from './users/live-users.js';
import { ensureOperator } from './users/operator-credential.js';
import { defaultUsersFile } from './users/users-file.js';
import { UpdateCounter } from './metrics/update-counter.js';
import { HubMetrics } from './metrics/hub-metrics.js';
import { metricSources } from './metrics/sources.js';
import { DeliveryLog } from './webhook/deliveries.js';
import { startHubAudit, type HubAudit } from './audit/hub-audit.js';
import { resolveWebhookSecret } from './webhook/secret.js';

export type RunningHub = {
  httpPort: number;
  mqttUrl: string;
  mqtt: MqttClient;
  /** One line for the service manager (systemd STATUS=): whether the hub takes pushes, and where. */
  status(): string;
  /** What the embedded broker refused since the start (undefined with an external broker). */
  brokerRefusals(): Refusals | undefined;
  /** The services engine's operations (undefined when engines.services is disabled). */
  services?: ServicesApi;
  stop(): Promise<void>;
};

export type HubHooks = {
  /** Called with status() whenever it changes (broker lost or back, state directory gone). */
  status?(line: string): void;
};

/**
 * Starts state, broker (unless external), MQTT client, engines and HTTP, in that order. Each
 * step adds its undo to a teardown as it completes: a failed start closes what it had opened and
 * rejects (a StartupError, one line, for the causes a person can act on); `stop` runs the same
 * teardown, HTTP first.
 */
export async function startHub(config: HubConfig, log: Logger, hooks: HubHooks = {}): Promise<RunningHub> {
  try {
    return await startOrUndo(log, (teardown) => startSteps(config, log, hooks, teardown));
  } catch (err) {
    throw stateDbStartupError(config.stateDir, err) ?? err;
  }
}

async function startSteps(config: HubConfig, log: Logger, hooks: HubHooks, teardown: Teardown): Promise<RunningHub> {
  // Before anything in it is read or written: one hub per state directory.
  const lock = lockStateDir(config.stateDir, 'hub');
  teardown.add('state directory lock', () => lock.release());
  const secret = resolveWebhookSecret(config.webhook.secret, config.stateDir);
  if (secret.source === 'generated') {
    // Printed once, on the terminal as well as in the log, because the user must copy it.
    process.stderr.write(
      `\npushfleet: generated a webhook secret (kept in ${secret.file}, mode 0600):\n\n    ${secret.secret}\n\n` +
        `Paste it in GitHub: repository → Settings → Webhooks → Add webhook → "Secret",\n` +
        `with Payload URL http://<this-host>:${config.http.port}${config.webhook.path} and content type application/json.\n\n`,
    );
  }
  log.info({ source: secret.source, file: secret.file }, 'webhook secret loaded');
  const signingKey = config.signing.enabled ? resolveSigningKey(config.signing, config.stateDir) : null;
  if (signingKey) log.info({ source: signingKey.source, file: signingKey.file, pub: signingKey.pubFile, kid: signingKey.key.kid }, 'signing key loaded');
  else log.warn({ 'signing.enabled': false }, 'signing disabled: agents requiring signatures refuse every head, pin, rollback, grant and command of this hub');

  // Until the start is done there is no status to report but the step under way.
  let statusChanged = (): void => undefined;

  // State first: a damaged database ends the start before any port is open.
  const db = openStateDb(config.stateDir);
  teardown.add('state database', () => db.close());
  const batch = new TickBatch(db);
  teardown.add('state writes', () => batch.flush());
  const deliveries = new DeliveryLog(db, batch, (err, what) => log.warn({ err: (err as Error).message }, what));
  const heads = new HeadStore(db, batch);
  const events = new HubEvents();
  const audit = startHubAudit(config, { db, batch, log, clock: systemClock, onChanged: () => events.changed('audit') });
  teardown.add('audit prune timer', () => audit.stop());
  deliveries.pruneOld();
  const pruneTimer = setInterval(() => deliveries.pruneOld(), 86_400_000).unref();
  teardown.add('prune timer', () => clearInterval(pruneTimer));
  const stateWatch = new StateDirWatch({ dir: config.stateDir, db: stateDbFile(config.stateDir) }, (problem) => {
    log.error({ stateDir: config.stateDir, problem }, 'state directory lost: no more pushes are taken');
    statusChanged();
  });
  stateWatch.start();
  teardown.add('state directory watch', () => stateWatch.stop());

  // One topic table for the broker's ACL and the signer: which topics exist, who may publish, what is signed.
  const contract = new TopicContract({ semaphorePrefix: config.engines.semaphore.prefix, jobsPrefix: config.engines.jobs.prefix });
  const embedded = config.mqtt ? undefined : await startBroker(config, db, batch, log, contract, audit);
  const broker: EmbeddedBroker | undefined = embedded?.broker;
  if (broker) teardown.add('embedded broker', () => broker.close());
  const mqttConfig = config.mqtt ?? { url: broker!.url, keepalive: 30 };
  const shownUrl = redactUrl(mqttConfig.url);

  log.info({ url: shownUrl }, 'connecting to MQTT broker');
  hooks.status?.(`connecting to MQTT broker ${shownUrl}`);
  const startedAt = new Date().toISOString();
  const hubStatus = (state: HubStatus['state']) => JSON.stringify({ v: SCHEMA_VERSION, state, version: VERSION, startedAt, at: new Date().toISOString() } satisfies HubStatus);
  const mqtt = await connectMqtt(mqttConfig, {
    will: { topic: HUB_STATUS, payload: hubStatus('offline'), retain: true, qos: 1 },
    onRetry: (err) => log.warn({ err: err.message }, 'MQTT broker unreachable; retrying'),
    stream: broker && (() => broker.connectInProcess()),
  });
  teardown.add('MQTT client', () => closeMqtt(mqtt, { topic: HUB_STATUS, payload: hubStatus('offline') }));
  // Clients following the hub's work (`play`) learn that it went away, from here or the will.
  const announce = () => mqtt.publishAsync(HUB_STATUS, hubStatus('online'), { qos: 1, retain: true }).catch((err: Error) => log.warn({ err: err.message }, 'hub status not published'));
  mqtt.on('connect', () => void announce());
  await announce();
  withdrawPushesOnConnectionLoss(mqtt);
  mqtt.on('offline', () => {
    log.warn({ url: shownUrl }, 'MQTT broker unreachable; retrying');
    statusChanged();
  });
  mqtt.on('error', (err) => log.warn({ err: err.message }, 'MQTT error'));
  log.info({ url: shownUrl, embedded: Boolean(broker) }, 'connected to MQTT broker');
  mqtt.on('connect', () => {
    log.info({ url: shownUrl }, 'reconnected to MQTT broker');
    statusChanged();
  });

  // With the embedded broker the hub publishes as the broker itself: no packet to encode and parse.
  const rawPublish = (topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain?: boolean }): Promise<unknown> =>
    broker ? broker.publish(topic, typeof payload === 'string' ? Buffer.from(payload) : payload, opts) : mqtt.publishAsync(topic, payload, opts);
  // Closed after the engines, which may still publish while they stop; signing goes on in-process then.
  const signingWorker = signingKey && new SigningWorker(signingKey.key.privateKey, log);
  if (signingWorker) teardown.add('signing worker', () => signingWorker.close());
  const signer = new Signer(signingKey?.key ?? null, contract, persistedSequence(db), signingWorker ? (data) => signingWorker.sign(data) : undefined);
  const { publish, republish } = signedPublisher(rawPublish, signer, heads, (topic, err) => log.error({ topic, err }, 'could not store retained head'));
  const publisher: Publisher = {
    publish: async (topic, payload, opts) => {
      // An engine's answer to an operator request waits until the request's audit entry is committed.
      const held = audit.actions.beforePublish(topic, payload);
      if (held) await held;
      await publish(topic, payload, opts);
    },
  };
  // Only the copies the broker kept: a live message read meanwhile is no retained one.
  const readBack = (filters: string[], onMessage: (topic: string, payload: Buffer) => void) =>
    readRetained(mqtt, filters, (topic, payload, retained) => retained && onMessage(topic, payload));
  const changed = events.changed.bind(events);
  const ctx = { publisher, db, batch, clock: systemClock, log, readRetained: readBack, unseal: (topic: string, payload: Buffer) => signer.unseal(topic, payload), contract, changed };
  const metrics = new HubMetrics(config.metrics);
  if (config.metrics.allowAnonymous) log.warn("metrics.allowAnonymous is on: GET /metrics answers anyone who reaches the hub's HTTP port, without a token");
  const updates = new UpdateCounter(ctx, config.metrics.maxAgents, metrics.updateEnded);
  const views = new ViewsEngine(ctx, changed, heads, updates.appState);
  // Both doors for pushes (webhook, notify): the API's heads follow what the broker acknowledged.
  const pushOut = (push: PushMessage) => sendPush(publish, push).then(() => views.headPublished(push));
  const notify = new NotifyRequests(ctx, {
    deliveries,
    sendPush: pushOut,
    isConnected: () => mqtt.connected && stateWatch.lost === undefined,
    timeoutMs: config.webhook.publishTimeoutMs,
    maxPending: config.webhook.maxInFlight,
  });
  const engines = [audit.actions, ...(await createEngines(config, ctx, { store: heads, republish }, broker !== undefined && !broker.restoredState)), notify, views];
  metrics.readFrom(metricSources(engines, views.fleet));
  // With the embedded broker the engines take its messages in-process: no PUBLISH encoded for the hub's client and parsed again.
  const dispatcher = new Dispatcher(broker ? broker.inbox() : mqtt, engines, log);
  // Before start: engines started before one that fails are stopped again.
  teardown.add('engines', () => dispatcher.stop());
  await dispatcher.start();

  /** Why no push is taken now: the state directory is gone or the broker unreachable. */
  const refusal = (): string | undefined => stateWatch.lost ?? (mqtt.connected ? undefined : `MQTT broker ${shownUrl} unreachable; retrying`);

  const streams = new EventStreams(events);
  // The REST API's accounts: the users file the embedded broker takes (with an external broker the
  // same path, filled by `pushfleet users add`), read again whenever it changes. An account removed
  // or changed (password, role) has its live streams ended, as the broker ends its sessions.
  const apiUsers = new LiveUsers(config.broker.usersFile ?? defaultUsersFile(config.stateDir), log, (names) => streams.endOwners(names));
  apiUsers.start();
  teardown.add('API users', () => apiUsers.stop());
  const servicesApi = servicesApiOf(engines);

  // Runs right after the webhook server closed: no mark-published retry outlives the stop.
  teardown.add('delivery log', () => deliveries.close());
  const server: Server = createHttpServer({
    webhookPath: config.webhook.path,
    secret: secret.secret,
    maxBodyBytes: config.webhook.maxBodyBytes,
    maxInFlight: config.webhook.maxInFlight,
    maxBufferedBytes: config.webhook.maxBufferedBytes,
    bodyTimeoutMs: config.webhook.bodyTimeoutMs,
    publishTimeoutMs: config.webhook.publishTimeoutMs,
    deliveries,
    audit: audit.log,
    publish: pushOut,
    isConnected: () => mqtt.connected,
    notReady: () => {
      const held = deliveries.unacknowledged;
      // Connected but silent (a stalled broker): pushes are answered 202 and wait in the client.
      return refusal() ?? (held > 0 ? `the MQTT broker has not acknowledged ${held} push(es) within webhook.publishTimeoutMs; they wait in the hub's client` : undefined);
    },
    unavailable: () => stateWatch.lost,
    observer: {
      answered: (answer) => {
        metrics.delivered(answer.result);
        views.delivered(deliveryRecord(answer, new Date()));
      },
      published: (seconds) => metrics.published(seconds),
    },
    metrics: { registry: metrics, allowAnonymous: config.metrics.allowAnonymous },
    api: {
      auth: new ApiAuth({ users: () => apiUsers.users, log, onRefused: (r) => audit.loginRefused('api', r) }),
      events,
      streams,
      services: () => servicesApi,
      views,
      sendRetry: (agent, request) => publisher.publish(agentRetryTopic(agent), JSON.stringify(request), { qos: 1 }),
      rollouts: () => engineNamed<RolloutsEngine>(engines, 'rollouts'),
      jobs: () => engineNamed<JobsEngine>(engines, 'jobs'),
      audit: audit.log,
    },
    dashboard: loadDashboardAssets(),
    log,
  });
  server.listen(config.http.port, config.http.host);
  await once(server, 'listening').catch((err: unknown) => {
    throw listenError(err, 'webhooks', `${config.http.host}:${config.http.port}`, 'http.port (--port)');
  });
  // Stop taking pushes first (the undo runs first), let in-flight ones finish publishing, then drop the broker.
  teardown.add('webhook server', () => new Promise<void>((resolve) => server.close(() => resolve())));
  // Ended before the server closes, which waits for every open connection.
  streams.start();
  teardown.add('event streams', () => streams.stop());
  const httpPort = (server.address() as AddressInfo).port;
  log.info({ host: config.http.host, port: httpPort, path: config.webhook.path }, 'webhook listening');
  if (signingKey?.source === 'generated') {
    // Once the start succeeded (a failed start says one line): the user must copy hub.pub to the agents.
    process.stderr.write(
      `\npushfleet: generated the hub's signing key (kept in ${signingKey.file}, mode 0600).\n` +
        `Agents act only on what it signed: copy ${signingKey.pubFile} to each agent host and set in the agent config:\n\n    hubPublicKey: /path/to/hub.pub\n\n`,
    );
  }

  const status = (): string => {
    const why = refusal();
    return why ? `not taking pushes: ${why}` : `taking pushes on ${config.http.host}:${httpPort}${config.webhook.path}; MQTT ${shownUrl}`;
  };
  statusChanged = () => hooks.status?.(status());
  // Once the start is done, so a start that fails says only why.
  if (embedded?.newOperator) printNewOperator(embedded.newOperator, `http://${['0.0.0.0', '::'].includes(config.http.host) ? '<this-host>' : config.http.host}:${httpPort}/`);
  const stop = async () => {
    await teardown.run();
    log.info('hub stopped');
  };
  let stopped: Promise<void> | undefined;
  return { httpPort, mqttUrl: mqttConfig.url, mqtt, status, brokerRefusals: () => broker?.refused(), services: servicesApi, stop: () => (stopped ??= stop()) };
}

/**
 * The embedded broker, with its accounts: the users file (with a generated `operator` on first
 * start, printed once like the webhook secret) and the topic contract's ACL.
 */
async function startBroker(config: HubConfig, db: StateDb, batch: TickBatch, log: Logger, contract: TopicContract, audit: HubAudit): Promise<{ broker: EmbeddedBroker; newOperator?: NewOperator }> {
  const { broker: b, stateDir } = config;
  const usersFile = b.usersFile ?? defaultUsersFile(stateDir);
  // Before the operator account is made: a start that cannot succeed creates nothing.
  const tlsFiles = b.tls && readTlsFiles(b.tls);
  const operator = await ensureOperator(usersFile, stateDir);
  log.info({ usersFile, operatorCreated: operator.created }, 'broker users loaded');
  const options = {
    host: b.host,
    port: b.port,
    state: b.persistence === 'sqlite' ? { db, batch } : undefined,
    // The semaphore engine publishes every go and kept expiry again from its jobs at each start.
    ...(config.engines.semaphore.enabled && { memoryOnlyRetained: (topic: string) => SEMAPHORE_OWN_RETAINED.has(contract.lookup(topic)?.spec.name ?? '') }),
    access: { usersFile, allowAnonymous: b.allowAnonymous, contract, db, onLoginRefused: (r: LoginRefusal) => audit.loginRefused('mqtt', r), publishers: audit.publishers },
    tls: b.tls && tlsFiles && { host: b.tls.host ?? b.host, port: b.tls.port, ...tlsFiles },
  };
  const broker = await startEmbeddedBroker(options, log).catch((err: unknown) => {
    throw listenError(err, 'MQTT', `${b.host}:${b.port}${b.tls ? ` or ${options.tls!.host}:${b.tls.port}` : ''}`, `broker.port (--broker-port)${b.tls ? ' or broker.tls.port' : ''}, or mqtt.url to use that broker`);
  });
  return { broker, ...(operator.created && { newOperator: { usersFile, file: operator.file, password: operator.password } }) };
}

type NewOperator = { usersFile: string; file: string; password: string };

const SEMAPHORE_OWN_RETAINED = new Set(['semaphore.go', 'semaphore.expired']);

/** Printed once, on the terminal only (never in the log), like the webhook secret. */
function printNewOperator({ usersFile, file, password }: NewOperator, dashboard: string): void {
  process.stderr.write(
    `\npushfleet: created the broker account "operator" (users file ${usersFile}), password:\n\n    ${password}\n\n` +
      `It is kept in ${file} (mode 0600), where pushfleet commands on this host find it by themselves.\n` +
      `The dashboard is at ${dashboard}; its token for this account is operator:<that password>\n` +
      `(a read-only one: pushfleet users add <name> --role viewer -c <this hub's config>).\n` +
      `Give each agent its own account: pushfleet users add <agent-id> --role agent -c <this hub's config>\n\n`,
  );
}

import type { Logger } from '../../shared/logger.js';
import type { LoginRefusal } from '../users/login-refusal.js';
import { RequestPublishers } from '../broker/request-publishers.js';
import type { HubConfig } from '../config.js';
import type { Clock } from '../engines/engine.js';
import type { StateDb } from '../state-db.js';
import type { TickBatch } from '../tick-batch.js';
import type { AuditVia } from './audit-entry.js';
import { AuditLog } from './audit-log.js';
import { MqttActionAudit } from './mqtt-action-audit.js';

const PRUNE_EVERY_MS = 3_600_000;

export type HubAudit = {
  log: AuditLog;
  /** The engine recording operator requests over MQTT (listed before every other engine). */
  actions: MqttActionAudit;
  /** Who published each request: the embedded broker's door notes them, and the hub its own. */
  publishers: RequestPublishers;
  /** A refused login, at the broker (`mqtt`) or the API (`api`). */
  loginRefused(via: AuditVia, refusal: LoginRefusal): void;
  stop(): void;
};

/** The audit log and its recording points that do not live in a route: refused logins, MQTT requests. */
export function startHubAudit(config: HubConfig, deps: { db: StateDb; batch: TickBatch; log: Logger; clock: Clock; onChanged(): void }): HubAudit {
  const log = new AuditLog(deps.db, deps.batch, {
    ...config.audit,
    onChanged: deps.onChanged,
    onError: (err, what) => deps.log.warn({ err: (err as Error).message }, what),
  });
  const prune = (): void => void log.pruneOld().catch((err: unknown) => deps.log.warn({ err: (err as Error).message }, 'old audit entries not pruned'));
  prune();
  const timer = setInterval(prune, PRUNE_EVERY_MS).unref();
  const publishers = new RequestPublishers();
  return {
    log,
    // With an external broker nobody tells the hub who published a request (see MqttActionAudit).
    actions: new MqttActionAudit({ audit: log, clock: deps.clock, log: deps.log, publishers, brokerNamesPublishers: !config.mqtt }),
    publishers,
    loginRefused: (via, { name, address, reason }) =>
      log.note({ kind: 'login', via, who: name, identity: 'none', address, action: 'login', outcome: 'rejected', reason }),
    stop: () => clearInterval(timer),
  };
}

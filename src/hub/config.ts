import { z } from 'zod';
import { whenParsed } from '../shared/config-file.js';
import { defaultStateDir } from '../shared/default-state-dir.js';
import { MqttConnectionConfig } from '../shared/mqtt-connection.js';
import { SemaphoreConfig } from './engines/semaphore/config.js';
import { OrchestratorConfig } from './engines/orchestrator/config.js';
import { RolloutsConfig } from './engines/rollouts/config.js';
import { JobsConfig } from './engines/jobs/config.js';
import { ServicesConfig } from './engines/services/config.js';
import { MetricsConfig } from './metrics/config.js';

const Port = z.number().int().min(0).max(65535);
const LogLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export const HubConfig = z
  .object({
    http: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: Port.default(3000),
        /** Where people reach this hub (behind a proxy, its public address): links to its page (GitHub deployments' log_url) start with it. */
        publicUrl: z.url({ protocol: /^https?$/, error: 'expected an absolute http(s) URL, e.g. https://hub.example.com' }).optional(),
      })
      .strict()
      .prefault({}),
    webhook: z
      .object({
        path: z.string().startsWith('/').default('/webhook'),
        /** Leave unset to use PUSHFLEET_WEBHOOK_SECRET or a generated one kept in stateDir. */
        secret: z.string().min(16, 'use at least 16 characters').optional(),
        maxBodyBytes: z.number().int().positive().default(25 * 1024 * 1024),
        /** Pushes being recorded or awaiting the broker's PUBACK at once; beyond it 503 + Retry-After, so memory stays bounded. */
        maxInFlight: z.number().int().positive().default(2000),
        /** Bytes of webhook bodies held at once across all requests; beyond it 503 + Retry-After. */
        maxBufferedBytes: z.number().int().positive().default(64 * 1024 * 1024),
        /** A body must arrive this long after its headers, else 408 and the connection is closed (GitHub gives up after 10 s). */
        bodyTimeoutMs: z.number().int().min(100).max(60_000).default(10_000),
        /** How long the answer waits for the broker's PUBACK before 202 "publishing" (GitHub waits 10 s). */
        publishTimeoutMs: z.number().int().positive().max(9000).default(5000),
      })
      .strict()
      .refine((w) => w.maxBufferedBytes >= w.maxBodyBytes, { message: 'must be at least webhook.maxBodyBytes, or the largest body could never be read', path: ['maxBufferedBytes'], ...whenParsed('maxBufferedBytes', 'maxBodyBytes') })
      .prefault({}),
    /** An external broker. Leave unset to run the embedded one. */
    mqtt: MqttConnectionConfig.optional(),
    broker: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: Port.default(1883),
        /** `sqlite`: sessions, queued QoS 1/2 messages, retained messages and wills kept in stateDir/hub.sqlite across restarts; `memory`: lost with the process. */
        persistence: z.enum(['sqlite', 'memory']).default('sqlite'),
        /** Broker accounts (`pushfleet users add|rm|ls`); default `<stateDir>/users.json`. Read again when it changes. */
        usersFile: z.string().min(1).optional(),
        /** Let clients in without a password (with what agents and operators may do). Off unless set; warned about at every start. */
        allowAnonymous: z.boolean().default(false),
        /** A second listener, MQTT over TLS (mqtts), with the same accounts. */
        tls: z
          .object({
            port: Port.default(8883),
            /** Default: broker.host. */
            host: z.string().optional(),
            cert: z.string().min(1),
            key: z.string().min(1),
            /** A CA whose client certificates log in as the user named by their CN, without a password. */
            ca: z.string().min(1).optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({}),
    /** What makes agents act (heads, pins, rollbacks, rollout grants, orchestrator commands) is signed with this Ed25519 key. */
    signing: z
      .object({
        enabled: z.boolean().default(true),
        /** PKCS8 PEM (`pushfleet keys init`); unset: <stateDir>/hub.key, generated on first start. */
        key: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    /** The audit log (deliveries, actions, refused logins) in stateDir/hub.sqlite: `pushfleet audit`, GET /api/v1/audit. */
    audit: z
      .object({
        /** Entries kept at most; the oldest go first. Repeats within a minute are one entry with a count. */
        maxEntries: z.number().int().min(100).max(10_000_000).default(100_000),
        /** Entries older than this go (checked at start and hourly). */
        maxAgeDays: z.number().int().min(1).max(3650).default(90),
      })
      .strict()
      .prefault({}),
    stateDir: z.string().default(() => defaultStateDir('pushfleet')),
    log: z.object({ level: LogLevel.default('info') }).strict().prefault({}),
    /** GET /metrics (Prometheus): who may scrape it, and the agents' label breakdown. */
    metrics: MetricsConfig.prefault({}),
    /** Settings of the hub's engines, one key each (see src/hub/engines/<name>/README.md). */
    engines: z
      .object({ semaphore: SemaphoreConfig.prefault({}), orchestrator: OrchestratorConfig.prefault({}), rollouts: RolloutsConfig.prefault({}), jobs: JobsConfig.prefault({}), services: ServicesConfig.prefault({}) })
      .strict()
      .refine((e) => !e.rollouts.enabled || e.semaphore.enabled, { message: 'rollouts admit hosts through the semaphore: enable engines.semaphore or disable engines.rollouts', path: ['rollouts', 'enabled'], ...whenParsed('rollouts', 'semaphore') })
      .prefault({}),
  })
  .strict();
export type HubConfig = z.infer<typeof HubConfig>;

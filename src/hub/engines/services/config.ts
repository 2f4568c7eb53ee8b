import { z } from 'zod';
import { DEFAULT_HEARTBEAT_MISS_MS } from './fencing.js';
import { DEFAULT_LEASE } from './model.js';
import { DEFAULT_RESTART } from './restart-policy.js';
import type { MachineSettings } from './service-machine.js';

const ms = z.number().int().positive();

/** The services engine's settings (`engines.services` in the hub config; README.md beside this file). */
export const ServicesConfig = z
  .object({
    enabled: z.boolean().default(true),
    /**
     * Keep services, placements and generations in this PostgreSQL database instead of the hub's
     * SQLite file (`postgres://user@host:5432/db`). Leave the password out and set PGPASSWORD or
     * ~/.pgpass for the hub's user: the config file then holds no secret. Never logged.
     */
    postgresUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\/[^\s]+$/, 'use a postgres://user@host:port/database URL')
      .optional(),
    /** How often each agent renews its lease (and so heartbeats). */
    renewMs: ms.default(DEFAULT_LEASE.renewMs),
    /** How long an agent may keep its services running without a renewed lease. */
    leaseMs: ms.default(DEFAULT_LEASE.leaseMs),
    /** Margin for clock rate differences between hub and agents over one lease. */
    driftMs: z.number().int().min(0).default(DEFAULT_LEASE.driftMs),
    /** An agent silent this long is lost, as if its last will fired. */
    heartbeatMissMs: ms.default(DEFAULT_HEARTBEAT_MISS_MS),
    restart: z
      .object({
        attempts: z.number().int().min(0).default(DEFAULT_RESTART.attempts),
        intervalMs: ms.default(DEFAULT_RESTART.intervalMs),
        delayMs: ms.default(DEFAULT_RESTART.delayMs),
        factor: z.number().min(1).default(DEFAULT_RESTART.factor),
        maxDelayMs: ms.default(DEFAULT_RESTART.maxDelayMs),
        rescheduleDelayMs: ms.default(DEFAULT_RESTART.rescheduleDelayMs),
        rescheduleMaxDelayMs: ms.default(DEFAULT_RESTART.rescheduleMaxDelayMs),
      })
      .strict()
      .prefault({}),
    /** Ended placements kept per service, newest first. */
    historyLimit: z.number().int().positive().default(20),
  })
  .strict()
  // A lease must survive a lost renewal or two, and silence must outlast one renewal gap.
  .refine((c) => c.leaseMs >= 2 * c.renewMs, { message: 'leaseMs must be at least twice renewMs', path: ['leaseMs'] })
  .refine((c) => c.heartbeatMissMs >= 2 * c.renewMs, { message: 'heartbeatMissMs must be at least twice renewMs', path: ['heartbeatMissMs'] });
export type ServicesConfig = z.infer<typeof ServicesConfig>;

export function machineSettings(c: ServicesConfig): MachineSettings {
  return { renewMs: c.renewMs, leaseMs: c.leaseMs, driftMs: c.driftMs, heartbeatMissMs: c.heartbeatMissMs, restart: c.restart, historyLimit: c.historyLimit };
}

import { z } from 'zod';

/** The services engine's settings (`engines.services` in the hub config). */
export const ServicesConfig = z
  .object({
    enabled: z.boolean().default(true),
    /**
     * Keep services, placements and generations in this PostgreSQL database instead of the hub's
     * SQLite file (`postgres://user@host:5432/db`). Leave the password out and set PGPASSWORD or
     * ~/.pgpass for the hub's user: the config file then holds no secret.
     */
    postgresUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\/[^\s]+$/, 'use a postgres://user@host:port/database URL')
      .optional(),
  })
  .strict();
export type ServicesConfig = z.infer<typeof ServicesConfig>;

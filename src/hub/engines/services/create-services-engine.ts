import { StartupError } from '../../../shared/startup.js';
import type { EngineContext } from '../engine.js';
import type { ServicesConfig } from './config.js';
import type { ServiceStore } from './model.js';
import { ServicesEngine } from './services-engine.js';
import { SqliteServiceStore } from './sqlite-store.js';

/**
 * The services engine with its store: the hub's state database (SQLite) by default, PostgreSQL
 * when `engines.services.postgresUrl` is set. A database that cannot be used ends the hub's start
 * with one line (the URL's password hidden).
 */
export async function createServicesEngine(ctx: EngineContext, config: ServicesConfig): Promise<ServicesEngine> {
  const log = ctx.log.child({ engine: 'services' });
  const opts = { historyLimit: config.historyLimit };
  let store: ServiceStore;
  if (config.postgresUrl === undefined) store = new SqliteServiceStore(ctx.db, opts);
  else {
    try {
      // Loaded only then: the pg driver costs a hub without it nothing.
      const { PostgresServiceStore } = await import('./postgres-store.js');
      store = await PostgresServiceStore.open(config.postgresUrl, { ...opts, log });
    } catch (err) {
      throw new StartupError((err as Error).message);
    }
  }
  return new ServicesEngine(ctx, config, { store });
}

import type { HubConfig } from '../config.js';
import type { Engine, EngineContext } from './engine.js';
import type { HeadStore } from './heads/head-store.js';
import type { ServicesApi } from './services/services-api.js';
import type { ServicesEngine } from './services/services-engine.js';
import { HeadsEngine, type Republish } from './heads/heads-engine.js';
import { SemaphoreEngine } from './semaphore/semaphore-engine.js';
import { OrchestratorEngine } from './orchestrator/orchestrator-engine.js';
import { RolloutsEngine } from './rollouts/rollouts-engine.js';
import { githubSettings } from './rollouts/config.js';
import { GitHubDeployments } from './rollouts/github-deployments.js';

/** The hub's engines, in start order. Each one is a folder beside this file. */
/** `restoreHeads`: the broker starts without the retained heads (an embedded one with nothing on disk). */
export async function createEngines(config: HubConfig, ctx: EngineContext, own: { store: HeadStore; republish: Republish }, restoreHeads: boolean): Promise<Engine[]> {
  const heads = own.store;
  const engines: Engine[] = [new HeadsEngine(ctx, heads, own.republish, restoreHeads)];
  const semaphore = config.engines.semaphore.enabled ? new SemaphoreEngine(ctx, config.engines.semaphore) : undefined;
  if (semaphore) engines.push(semaphore);
  // After the semaphore: it restores its channels before rollouts set their limits again.
  if (semaphore && config.engines.rollouts.enabled) {
    const github = githubSettings(config.engines.rollouts);
    const reporter = github && new GitHubDeployments({ ...github, publicUrl: config.http.publicUrl }, ctx.db, ctx.log.child({ engine: 'rollouts', to: 'github' }));
    engines.push(new RolloutsEngine(ctx, config.engines.rollouts, semaphore, reporter, heads));
  }
  if (config.engines.orchestrator.enabled) engines.push(new OrchestratorEngine(ctx, config.engines.orchestrator));
  const jobs = config.engines.jobs;
  // With no table there is nothing to trigger. Loaded only then: the Kubernetes and S3 clients it
  // brings cost every hub start about a second.
  if (jobs.enabled && jobs.table !== undefined) {
    const { createJobsEngine } = await import('./jobs/create-jobs-engine.js');
    engines.push(createJobsEngine(ctx, { ...jobs, table: jobs.table }, config.stateDir));
  }
  if (config.engines.services.enabled) {
    const { createServicesEngine } = await import('./services/create-services-engine.js');
    engines.push(await createServicesEngine(ctx, config.engines.services));
  }
  return engines;
}

/** The engine named `name` (for the REST API's reads and actions), if it runs. */
export function engineNamed<E extends Engine>(engines: readonly Engine[], name: string): E | undefined {
  return engines.find((e) => e.name === name) as E | undefined;
}

/** The services engine's operations (for the REST API), if it runs. */
export function servicesApiOf(engines: readonly Engine[]): ServicesApi | undefined {
  return engineNamed<ServicesEngine>(engines, 'services')?.api;
}

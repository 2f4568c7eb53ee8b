import type { HubConfig } from '../config.js';
import type { Engine, EngineContext } from './engine.js';
import type { HeadStore } from './heads/head-store.js';
import { HeadsEngine } from './heads/heads-engine.js';
import { SemaphoreEngine } from './semaphore/semaphore-engine.js';
import { OrchestratorEngine } from './orchestrator/orchestrator-engine.js';

/** The hub's engines, in start order. Each one is a folder beside this file. */
export function createEngines(config: HubConfig, ctx: EngineContext, heads: HeadStore): Engine[] {
  const engines: Engine[] = [new HeadsEngine(ctx, heads, config.mqtt === undefined)];
  if (config.engines.semaphore.enabled) engines.push(new SemaphoreEngine(ctx, config.engines.semaphore));
  if (config.engines.orchestrator.enabled) engines.push(new OrchestratorEngine(ctx, config.engines.orchestrator));
  return engines;
}

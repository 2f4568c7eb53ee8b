import type { HubConfig } from '../config.js';
import type { Engine, EngineContext } from './engine.js';
import { HeadsEngine } from './heads/heads-engine.js';

/** The hub's engines, in start order. Each one is a folder beside this file. */
export function createEngines(config: HubConfig, ctx: EngineContext): Engine[] {
  return [new HeadsEngine(ctx, config.mqtt === undefined)];
}

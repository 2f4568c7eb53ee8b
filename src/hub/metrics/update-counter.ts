import type { AppState } from '../../shared/messages.js';
import type { EngineContext } from '../engines/engine.js';
import { TableBound } from '../engines/table-bound.js';
import { fileAppState, type AppUpdates, type UpdateOutcome } from './update-outcomes.js';

/** An agent runs a handful of apps; past this one agent's further apps are not counted. */
const MAX_APPS_PER_AGENT = 1000;

/**
 * Each update an app state says ended, told once (update-outcomes.ts decides which are news).
 * Fed the app states the hub's read model (views-engine.ts) decoded, so a message is decoded once
 * for the API and /metrics. Keeps only a short record per app; the agents are bounded by
 * `maxAgents` (beyond it new ones are left out and logged), an agent's apps by MAX_APPS_PER_AGENT.
 */
export class UpdateCounter {
  private readonly known = new Map<string, Map<string, AppUpdates>>();
  private readonly bounds: { agents: TableBound; apps: TableBound };

  constructor(
    ctx: Pick<EngineContext, 'log' | 'clock'>,
    maxAgents: number,
    private readonly onUpdate: (outcome: UpdateOutcome, seconds: number | undefined) => void,
  ) {
    this.bounds = {
      agents: new TableBound(ctx, 'agents followed for metrics', 'metrics.maxAgents', maxAgents, 'their updates left out of /metrics'),
      apps: new TableBound(ctx, 'apps of one agent followed for metrics', `MAX_APPS_PER_AGENT (${MAX_APPS_PER_AGENT})`, MAX_APPS_PER_AGENT, "the agent's further apps left out of /metrics"),
    };
  }

  /** One app state as it came (undefined: the app was cleared); `retained`: a retained copy, not one published now. */
  readonly appState = (agent: string, app: string, state: AppState | undefined, retained: boolean): void => {
    if (!state) return void this.known.get(agent)?.delete(app);
    let apps = this.known.get(agent);
    if (!apps) {
      if (!this.bounds.agents.admits(this.known.size, agent)) return;
      this.known.set(agent, (apps = new Map()));
    }
    if (!apps.has(app) && !this.bounds.apps.admits(apps.size, `${agent}/${app}`)) return;
    const { known, ended } = fileAppState(apps.get(app), state, retained);
    apps.set(app, known);
    if (ended) this.onUpdate(ended.outcome, ended.seconds);
  };
}

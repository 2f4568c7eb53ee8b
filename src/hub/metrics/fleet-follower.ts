import { agentMessageOf } from '../../shared/fleet.js';
import { AgentStatus, AppState, decode } from '../../shared/messages.js';
import { AGENT_APPS_ALL, AGENT_STATUS_ALL } from '../../shared/topics.js';
import type { Delivery, Engine, EngineContext } from '../engines/engine.js';
import { TableBound } from '../engines/table-bound.js';
import type { LabelledAgent } from './label-series.js';
import { fileAppState, type AppUpdates, type UpdateOutcome } from './update-outcomes.js';

/** `presence`: from the retained status, once one came (app states may come first). */
type Followed = { presence?: LabelledAgent; apps: Map<string, AppUpdates> };

/** An agent runs a handful of apps; past this one agent's further apps are not followed. */
const MAX_APPS_PER_AGENT = 1000;

/**
 * What /metrics says of the fleet: each agent's presence and labels (its retained status), and
 * each update an app state says ended. Only that is kept, a few strings an agent, not the
 * messages; the agents followed are bounded by `maxAgents` (beyond it new ones are left out and
 * logged), an agent's apps by MAX_APPS_PER_AGENT.
 */
export class FleetFollower implements Engine {
  readonly name = 'metrics';
  readonly subscriptions = [AGENT_STATUS_ALL, AGENT_APPS_ALL];
  private readonly followed = new Map<string, Followed>();
  private readonly bounds: { agents: TableBound; apps: TableBound };

  constructor(
    ctx: Pick<EngineContext, 'log' | 'clock'>,
    maxAgents: number,
    private readonly onUpdate: (outcome: UpdateOutcome, seconds: number | undefined) => void,
  ) {
    this.bounds = {
      agents: new TableBound(ctx, 'agents followed for metrics', 'metrics.maxAgents', maxAgents, 'new agents left out of /metrics'),
      apps: new TableBound(ctx, 'apps of one agent followed for metrics', `MAX_APPS_PER_AGENT (${MAX_APPS_PER_AGENT})`, MAX_APPS_PER_AGENT, "the agent's further apps left out of /metrics"),
    };
  }

  /** The agents followed, as they are now. */
  *agents(): Iterable<LabelledAgent> {
    for (const agent of this.followed.values()) if (agent.presence) yield agent.presence;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  handle(topic: string, payload: Buffer, delivery?: Delivery): void {
    const msg = agentMessageOf(topic);
    if (!msg || msg.kind === 'heartbeat') return;
    if (payload.length === 0) {
      if (msg.kind === 'app') this.followed.get(msg.agent)?.apps.delete(msg.app!);
      else this.followed.delete(msg.agent);
      return;
    }
    if (msg.kind === 'app') {
      const d = decode(AppState, payload);
      const agent = d.ok ? this.agent(msg.agent) : undefined;
      if (!d.ok || !agent || (!agent.apps.has(msg.app!) && !this.bounds.apps.admits(agent.apps.size, `${msg.agent}/${msg.app}`))) return;
      const { known, ended } = fileAppState(agent.apps.get(msg.app!), d.value, delivery?.retained === true);
      agent.apps.set(msg.app!, known);
      if (ended) this.onUpdate(ended.outcome, ended.seconds);
      return;
    }
    const d = decode(AgentStatus, payload);
    const agent = d.ok ? this.agent(msg.agent) : undefined;
    if (d.ok && agent) agent.presence = { online: d.value.state === 'online', labels: d.value.labels };
  }

  /** The agent's entry, made on its first message if the bound admits it. */
  private agent(id: string): Followed | undefined {
    let agent = this.followed.get(id);
    if (!agent && this.bounds.agents.admits(this.followed.size, id)) {
      agent = { apps: new Map() };
      this.followed.set(id, agent);
    }
    return agent;
  }
}

import type { NodeInfo } from '../../../shared/contract/orchestrator-messages.js';
import type { Target } from './native-playbook.js';

type Agent = { online: boolean; labels: Record<string, string>; info: NodeInfo | null };

const describe = (t: Target) => (typeof t === 'string' ? t : `{${Object.entries(t).map(([k, v]) => `${k}: ${v}`).join(', ')}}`);

/**
 * What the hub knows of the agents, from their retained status (online, labels) and node info
 * (the orchestrator role, its actions and clock): enough to turn a step's targets into agents.
 */
export class Fleet {
  private readonly agents = new Map<string, Agent>();

  /** `admits`: whether one more agent fits beside `size` (the bound of the table). */
  constructor(private readonly admits: (size: number, agent: string) => boolean = () => true) {}

  setStatus(agent: string, online: boolean, labels: Record<string, string>): void {
    this.update(agent, online, { online, labels });
  }

  setInfo(agent: string, info: NodeInfo | null): void {
    this.update(agent, info !== null, { info });
  }

  /** An agent not followed yet is added only by news that makes it usable (online, or a node). */
  private update(agent: string, usable: boolean, change: Partial<Agent>): void {
    const known = this.agents.get(agent);
    if (!known && (!usable || !this.admits(this.agents.size, agent))) return;
    this.agents.set(agent, { ...(known ?? { online: false, labels: {}, info: null }), ...change });
  }

  /**
   * Agent ids must be online nodes; a label selector takes every online node carrying all its
   * labels and must match at least one. Every resolved node must offer the action.
   */
  resolve(targets: readonly Target[], action: string): { nodes: string[]; errors: string[] } {
    const nodes = new Set<string>();
    const errors: string[] = [];
    for (const target of targets) {
      if (typeof target === 'string') {
        const a = this.agents.get(target);
        if (!a?.online) errors.push(`agent ${target} is not online`);
        else if (!a.info) errors.push(`agent ${target} has no orchestrator node (no orchestrator: in its config, or no clock yet)`);
        else nodes.add(target);
        continue;
      }
      const matching = [...this.agents].filter(([, a]) => a.online && a.info && Object.entries(target).every(([k, v]) => a.labels[k] === v));
      if (matching.length === 0) errors.push(`no online orchestrator node matches ${describe(target)}`);
      for (const [id] of matching) nodes.add(id);
    }
    for (const id of nodes) {
      if (!this.agents.get(id)!.info!.actions.includes(action)) errors.push(`agent ${id} has no action ${action}`);
    }
    return { nodes: [...nodes].sort(), errors };
  }
}

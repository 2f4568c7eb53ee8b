import type { NodeInfo } from '../../../shared/messages.js';
import type { Target } from './native-playbook.js';

type Agent = { online: boolean; labels: Record<string, string>; info: NodeInfo | null };

const describe = (t: Target) => (typeof t === 'string' ? t : `{${Object.entries(t).map(([k, v]) => `${k}: ${v}`).join(', ')}}`);

/**
 * What the hub knows of the agents, from their retained status (online, labels) and node info
 * (the orchestrator role, its actions and clock): enough to turn a step's targets into agents.
 */
export class Fleet {
  private readonly agents = new Map<string, Agent>();

  setStatus(agent: string, online: boolean, labels: Record<string, string>): void {
    this.agents.set(agent, { ...this.entry(agent), online, labels });
  }

  setInfo(agent: string, info: NodeInfo | null): void {
    this.agents.set(agent, { ...this.entry(agent), info });
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

  private entry(agent: string): Agent {
    return this.agents.get(agent) ?? { online: false, labels: {}, info: null };
  }
}

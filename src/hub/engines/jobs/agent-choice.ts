import type { AgentStatus } from '../../../shared/messages.js';
import type { AgentRow } from './model.js';

/**
 * The agent a run of `row` goes to: online, offering the row's action, carrying every label of
 * its selector, below its maxConcurrent; the least busy one (ties: the first id). `busy` counts
 * the runs this hub gave each agent that have not ended, which the agent's own count may not show
 * yet. Returns why none fits otherwise, in words a chain's failure branch can show.
 */
export function chooseAgent(agents: Iterable<AgentStatus>, row: Pick<AgentRow, 'action' | 'selector'>, busy: (agent: string) => number): { agent: string } | { none: string } {
  const wanted = Object.entries(row.selector);
  const fitting = [...agents].filter((a) => a.state === 'online' && a.jobs?.actions.includes(row.action) && wanted.every(([k, v]) => a.labels[k] === v));
  const labels = wanted.length ? ` with labels ${wanted.map(([k, v]) => `${k}=${v}`).join(',')}` : '';
  if (fitting.length === 0) return { none: `no online agent offers action ${row.action}${labels}` };
  const load = fitting.map((a) => ({ id: a.agent, max: a.jobs!.maxConcurrent, n: Math.max(a.jobs!.running, busy(a.agent)) })).sort((x, y) => x.n - y.n || (x.id < y.id ? -1 : 1));
  const free = load.find((a) => a.n < a.max);
  if (!free) return { none: `every online agent offering action ${row.action}${labels} is busy (${load.map((a) => `${a.id} ${a.n}/${a.max}`).join(', ')})` };
  return { agent: free.id };
}

import type { AgentEntry } from '../../shared/fleet.js';
import { envOf } from '../engines/rollouts/plan.js';

/** One environment (GET /api/v1/environments): the agents with that `env` label, and whether rollouts there are frozen. */
export type Environment = { name: string; frozen: boolean; agents: number; online: number };

/** Every environment some agent is in or that is frozen, by name. */
export function environments(agents: Iterable<[string, AgentEntry]>, frozen: readonly string[]): Environment[] {
  const envs = new Map<string, Environment>();
  const env = (name: string) => envs.get(name) ?? envs.set(name, { name, frozen: frozen.includes(name), agents: 0, online: 0 }).get(name)!;
  for (const name of frozen) env(name);
  for (const [, entry] of agents) {
    const e = env(envOf(entry));
    e.agents++;
    if (entry.status?.state === 'online') e.online++;
  }
  return [...envs.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
}

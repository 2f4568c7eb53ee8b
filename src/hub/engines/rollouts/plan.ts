import type { AgentEntry, FleetSnapshot } from '../../../shared/fleet.js';
import type { PushMessage } from '../../../shared/messages.js';
import type { RolloutPolicy, RolloutSettings } from '../../../shared/contract/rollout-messages.js';
import { appFollowsPush, pushedSha } from '../../../shared/push-match.js';
import { DEFAULT_ENV, ENV_LABEL, rolloutId } from '../../../shared/topics.js';
import { resolvePolicy } from './policy.js';

export type PushFacts = Pick<PushMessage, 'repo' | 'ref' | 'branch' | 'tag' | 'deleted' | 'after' | 'headCommit'>;
export type PlannedRollout = {
  id: string;
  app: string;
  env: string;
  sha: string;
  frozen: boolean;
  policy: RolloutPolicy;
  targets: { agent: string; fromSha: string | null }[];
};
export type Exclusion = { agent: string; app: string | null; reason: string };
export type Plan = {
  sha: string;
  rollouts: PlannedRollout[];
  /** Apps without `rollout: true`: they update as soon as the push arrives. */
  immediate: { agent: string; app: string }[];
  excluded: Exclusion[];
};

const short = (sha: string) => sha.slice(0, 8);
export const envOf = (agent: AgentEntry): string => agent.status?.labels[ENV_LABEL] ?? DEFAULT_ENV;

/**
 * Which hosts and apps a push updates, grouped into rollouts (one per app × environment), and
 * why every other host does not. The hub plans with it; `pushfleet explain` prints it.
 */
export function planPush(fleet: FleetSnapshot, push: PushFacts, settings: Pick<RolloutSettings, 'defaults' | 'policies' | 'frozen'>): Plan {
  const sha = pushedSha(push);
  const plan: Plan = { sha, rollouts: [], immediate: [], excluded: [] };
  const groups = new Map<string, PlannedRollout>();
  const refName = push.branch ?? push.tag ?? push.ref;
  for (const [agent, entry] of [...fleet.agents].sort(([a], [b]) => a.localeCompare(b))) {
    const exclude = (app: string | null, reason: string) => plan.excluded.push({ agent, app, reason });
    const apps = [...entry.apps.values()].filter((a) => a.repo === push.repo);
    if (apps.length === 0) {
      exclude(null, `no app follows ${push.repo}`);
      continue;
    }
    if (entry.status?.state !== 'online') {
      exclude(null, 'offline: it converges on the newest push when it comes back');
      continue;
    }
    for (const app of apps) {
      const follows = app.follows && { repo: app.repo, [app.follows.kind]: app.follows.pattern };
      if (push.deleted) exclude(app.app, `${refName} was deleted: nothing to deploy`);
      else if (!follows) exclude(app.app, 'its agent does not say what it follows (older agent)');
      else if (!appFollowsPush(follows, push)) exclude(app.app, `follows ${app.follows!.kind} "${app.follows!.pattern}", not ${refName}`);
      else if (app.pinnedSha !== null) exclude(app.app, `pinned to ${short(app.pinnedSha)}`);
      else if (app.sha === sha) exclude(app.app, `already on ${short(sha)}`);
      else if (!app.rollout) plan.immediate.push({ agent, app: app.app });
      else {
        const env = envOf(entry);
        const id = rolloutId(app.app, env, sha);
        const group = groups.get(id) ?? { id, app: app.app, env, sha, frozen: settings.frozen.includes(env), policy: undefined!, targets: [] };
        groups.set(id, group);
        group.targets.push({ agent, fromSha: app.sha });
      }
    }
  }
  for (const group of groups.values()) {
    group.policy = resolvePolicy(settings, group.app, group.env, group.targets.length);
    plan.rollouts.push(group);
  }
  return plan;
}

/**
 * The rounds a rollout would take if every host took as long: the canaries first, then
 * `min(batchSize, maxUnavailable)` at a time. Real rollouts refill a slot as soon as it frees.
 */
export function batchesOf(rollout: Pick<PlannedRollout, 'policy' | 'targets'>): string[][] {
  const hosts = rollout.targets.map((t) => t.agent);
  const width = Math.min(rollout.policy.batchSize, rollout.policy.maxUnavailable);
  const batches = rollout.policy.canary > 0 ? [hosts.splice(0, rollout.policy.canary)] : [];
  while (hosts.length) batches.push(hosts.splice(0, width));
  return batches;
}

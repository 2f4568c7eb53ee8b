import picomatch from 'picomatch';
import type { HostCount, RolloutPolicy, RolloutPolicyRule, RolloutSettings } from '../../../shared/contract/rollout-messages.js';

/**
 * What a rollout does when nothing is configured: careful, and still done in a few rounds.
 * maxUnavailable is unset: it then equals the batch size.
 */
export const BUILTIN_POLICY = {
  batchSize: '25%',
  canary: 1,
  hostTimeout: 900,
  failureThreshold: 1,
  onAbort: 'stop',
} as const satisfies RolloutPolicyRule;

/** A count or a percentage of `hosts`, rounded up, at least 1 and at most `hosts` (when there are any). */
export function resolveCount(count: HostCount, hosts: number): number {
  const n = typeof count === 'number' ? count : Math.ceil((Number.parseFloat(count) / 100) * hosts);
  return Math.max(1, hosts > 0 ? Math.min(n, hosts) : n);
}

/** The built-in policy, then `defaults`, then every rule whose app and env globs match, later winning. */
export function resolvePolicy(settings: Pick<RolloutSettings, 'defaults' | 'policies'>, app: string, env: string, hosts: number): RolloutPolicy {
  const rules = settings.policies.filter((r) => (r.app === undefined || picomatch.isMatch(app, r.app)) && (r.env === undefined || picomatch.isMatch(env, r.env)));
  const merged = Object.assign({}, BUILTIN_POLICY, settings.defaults, ...rules) as RolloutPolicyRule & typeof BUILTIN_POLICY;
  const batchSize = resolveCount(merged.batchSize, hosts);
  return {
    batchSize,
    canary: Math.min(merged.canary, hosts),
    maxUnavailable: merged.maxUnavailable === undefined ? batchSize : resolveCount(merged.maxUnavailable, hosts),
    hostTimeout: merged.hostTimeout,
    failureThreshold: resolveCount(merged.failureThreshold, hosts),
    onAbort: merged.onAbort,
  };
}

export type BackoffPolicy = { initialMs: number; maxMs: number };

/**
 * The delay before the next try after `failures` transient failures in a row (1 = the first):
 * initial·2^(failures−1), capped at max, of which half is fixed and half random ("equal jitter"),
 * so agents that lost the same remote at the same moment do not all come back at once.
 */
export function backoffMs(failures: number, policy: BackoffPolicy, random: () => number): number {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(Math.max(failures, 1) - 1, 40));
  return Math.round(base / 2 + (random() * base) / 2);
}

import { countHosts, HOST_FAILED, type HostCounts, type RolloutHost, type RolloutSnapshot } from '../../shared/contract/rollout-messages.js';

/**
 * A rollout's hosts in the order they are admitted: the canaries first (no one else starts
 * until all of them succeeded), then the rest as one rolling wave of `batchSize` at a time.
 */
export type RolloutBatch = { name: 'canary' | 'wave'; size: number; counts: HostCounts; done: number };

/** Hosts that will not change any more in this rollout. */
const SETTLED: readonly RolloutHost['state'][] = ['succeeded', 'failed', 'timed-out', 'skipped', 'offline', 'rolled-back'];

export type RolloutProgress = { hosts: number; done: number; succeeded: number; failed: number };

export type RolloutSummary = Omit<RolloutSnapshot, 'hosts' | 'policy' | 'counts' | 'hostsOmitted'> & { counts: HostCounts; progress: RolloutProgress };

/** GET /api/v1/rollouts/{id}: the whole rollout, its batches and each host with the reason of its failure. */
export type RolloutDetail = Omit<RolloutSnapshot, 'counts'> & { counts: HostCounts; progress: RolloutProgress; batches: RolloutBatch[] };

export function progressOf(counts: HostCounts): RolloutProgress {
  const n = (states: readonly RolloutHost['state'][]) => states.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
  return { hosts: Object.values(counts).reduce((a, b) => a + (b ?? 0), 0), done: n(SETTLED), succeeded: counts.succeeded ?? 0, failed: n(HOST_FAILED) };
}

/** A rollout of the history (the store's row, hosts left out) as the list shows it. */
export function rolloutSummary(snap: Omit<RolloutSnapshot, 'counts'> & { counts: HostCounts }): RolloutSummary {
  const { hosts: _hosts, policy: _policy, hostsOmitted: _omitted, ...rest } = snap;
  return { ...rest, progress: progressOf(snap.counts) };
}

export function rolloutDetail(snap: RolloutSnapshot): RolloutDetail {
  const counts = countHosts(snap.hosts);
  const batch = (name: RolloutBatch['name'], hosts: RolloutHost[]): RolloutBatch => ({ name, size: hosts.length, counts: countHosts(hosts), done: hosts.filter((h) => SETTLED.includes(h.state)).length });
  const canaries = snap.hosts.filter((h) => h.canary);
  const batches = [...(canaries.length ? [batch('canary', canaries)] : []), batch('wave', snap.hosts.filter((h) => !h.canary))];
  return { ...snap, counts, progress: progressOf(counts), batches };
}

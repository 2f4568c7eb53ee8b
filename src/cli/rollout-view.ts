import { countHosts, HOST_FAILED, type RolloutHostState, type RolloutReply, type RolloutSnapshot } from '../shared/contract/rollout-messages.js';
import { formatTable } from './text-table.js';

const short = (sha: string | null) => (sha ? sha.slice(0, 8) : '-');
const DONE: RolloutHostState[] = ['succeeded', 'rolled-back'];
const WAITING: RolloutHostState[] = ['pending', 'queued'];

/** "3 done / 2 updating / 5 waiting / 1 failed / 0 left out" for a host list or counts. */
export function progressLine(counts: Partial<Record<RolloutHostState, number>>): string {
  const sum = (states: readonly RolloutHostState[]) => states.reduce((n, s) => n + (counts[s] ?? 0), 0);
  return `${sum(DONE)} done / ${sum(['updating'])} updating / ${sum(WAITING)} waiting / ${sum(HOST_FAILED)} failed / ${sum(['skipped', 'offline'])} left out`;
}

export function renderRollout(snap: RolloutSnapshot): string {
  const { policy } = snap;
  const head = [
    `rollout ${snap.id}: ${snap.status}${snap.reason ? ` (${snap.reason})` : ''}`,
    `  ${snap.repo} ${snap.ref} → ${short(snap.sha)}, pushed by ${snap.pusher}, ${snap.createdAt}`,
    `  policy: batch ${policy.batchSize}, canary ${policy.canary}, maxUnavailable ${policy.maxUnavailable}, hostTimeout ${policy.hostTimeout}s, abort after ${policy.failureThreshold} failed (${policy.onAbort})`,
    `  ${progressLine(snap.counts ?? countHosts(snap.hosts))}`,
    '',
  ].join('\n');
  // Past engines.rollouts.snapshotMaxBytes the hub sends counts only; the hosts' changes are on the events topic.
  if (snap.hostsOmitted > 0) return `${head}\n  ${snap.hostsOmitted} hosts (not listed: the rollout is too large for one message; follow pushfleet/rollouts/${snap.id}/events)\n`;
  const rows = snap.hosts.map((h) => [h.agent, h.state, h.canary ? 'yes' : '', short(h.fromSha), h.startedAt ?? '-', h.endedAt ?? '-', h.error ?? '']);
  return `${head}\n${formatTable(['HOST', 'STATE', 'CANARY', 'FROM', 'STARTED', 'ENDED', 'ERROR'], rows)}`;
}

export function renderRolloutList(rollouts: NonNullable<RolloutReply['rollouts']>): string {
  if (rollouts.length === 0) return 'no rollouts yet\n';
  const rows = rollouts.map((r) => [r.id, r.status, r.ref, short(r.sha), r.pusher, r.createdAt, progressLine(r.counts)]);
  return formatTable(['ID', 'STATUS', 'REF', 'SHA', 'PUSHER', 'CREATED', 'PROGRESS'], rows);
}

/** What the fleet simulator's parent (fleet.ts) and its worker processes (fleet-worker.ts) say to each other. */

export type ToWorker =
  | { type: 'start'; url: string; agents: { id: string; password: string }[]; rollout: boolean; stepMs: number; heartbeatMs: number; concurrency: number }
  /** Counts for agents that announced or got `sha` at or after `since` (epoch ms). */
  | { type: 'report'; since: number; sha: string | null }
  | { type: 'stop' };

export type FleetReport = {
  started: number;
  /** Agents whose latest announce (status online, state, subscriptions acknowledged) was at or after `since`. */
  onlineSince: number;
  lastOnline: number;
  /** Agents running `sha`, having received its head at or after `since`. */
  atSha: number;
  lastHead: number;
  errorCount: number;
  /** Every error since the start, counted by kind. */
  errorKinds: Record<string, number>;
  /** A few of the errors since the last report. */
  errors: string[];
};

export type FromWorker = { type: 'started' } | { type: 'failed'; error: string } | { type: 'report'; report: FleetReport };

import type { AppState } from '../../shared/messages.js';

/** The app states that end an update; waiting, updating and retrying are on the way, idle and held never ran one. */
export const UPDATE_OUTCOMES = ['deployed', 'failed', 'rolled-back'] as const;
export type UpdateOutcome = (typeof UPDATE_OUTCOMES)[number];

const isOutcome = (state: AppState['state']): state is UpdateOutcome => (UPDATE_OUTCOMES as readonly string[]).includes(state);

/** What one update was: its state, the SHA it aimed for and the push it came from (updatedAt changes on every republish). */
export const updateKey = (s: AppState): string => `${s.state}\u0000${s.targetSha ?? ''}\u0000${s.deliveryId ?? ''}`;

/**
 * The update an app state message ends, if it is news: an outcome state unlike the app's previous
 * one (`previous`: its updateKey, undefined when the hub knew nothing of the app). A retained copy
 * of an app the hub knew nothing of (its start) is where the app stands, not an update seen
 * ending, so it is not counted; a retained copy that differs from what the hub knew is (the
 * update ended while the hub's connection was down). The agent republishes
 * the same state on a restart or a pin: same key, not counted again. `seconds`: the agent's own
 * measure of the update (durations.total), when it sent one.
 */
export function endedUpdate(previous: string | undefined, next: AppState, retained: boolean): { outcome: UpdateOutcome; seconds?: number } | undefined {
  if (!isOutcome(next.state)) return undefined;
  if (previous === undefined ? retained : previous === updateKey(next)) return undefined;
  const total = next.durations.total;
  return total === undefined ? { outcome: next.state } : { outcome: next.state, seconds: total / 1000 };
}

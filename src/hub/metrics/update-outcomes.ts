import type { AppState } from '../../shared/messages.js';

/** The app states that end an update; waiting, updating and retrying are on the way, idle and held never ran one. */
export const UPDATE_OUTCOMES = ['deployed', 'failed', 'rolled-back'] as const;
export type UpdateOutcome = (typeof UPDATE_OUTCOMES)[number];

const isOutcome = (state: AppState['state']): state is UpdateOutcome => (UPDATE_OUTCOMES as readonly string[]).includes(state);

/**
 * What the hub knows of one app's updates: the last outcome it saw (its state, target SHA and
 * push; updatedAt changes on every republish), and whether an update ran since (updating or
 * retrying seen).
 */
export type AppUpdates = { outcome?: string; ran: boolean };

export type Ended = { outcome: UpdateOutcome; seconds?: number };

/**
 * Files one app state message: the app's new AppUpdates, and the update it ends if it is news.
 * An outcome is news when an update ran since the last one (a retry of the same push ends anew)
 * or it differs from the last one (an update the hub did not see run). Not news: an outcome
 * republished (an agent restart, a pin, the app going back to "deployed" after a wait that ended
 * without an update), and the retained copy of an app the hub knew nothing of (its start), which
 * is where the app stands; a retained copy that differs from what the hub knew is news (the update
 * ended while the hub's connection was down). `seconds`: the agent's own measure of the update
 * (durations.total), when it sent one.
 */
export function fileAppState(known: AppUpdates | undefined, next: AppState, retained: boolean): { known: AppUpdates; ended?: Ended } {
  if (next.state === 'updating' || next.state === 'retrying') return { known: { ...known, ran: true } };
  if (!isOutcome(next.state)) return { known: known ?? { ran: false } };
  const outcome = `${next.state}\u0000${next.targetSha ?? ''}\u0000${next.deliveryId ?? ''}`;
  const news = known === undefined ? !retained : known.ran || known.outcome !== outcome;
  const total = next.durations.total;
  return { known: { outcome, ran: false }, ...(news && { ended: total === undefined ? { outcome: next.state } : { outcome: next.state, seconds: total / 1000 } }) };
}

import { SCHEMA_VERSION, type AppState } from '../src/shared/messages.js';
import type { AppConfig } from './config.js';
import type { Failure, Journal, Target } from './journal.js';
import { phaseSteps, type Shape } from './update-plan.js';

/** What the journal does not hold: the moment's waits, answers and refusals. */
export type RunnerView = {
  /** The target waiting for its rollout grant. */
  admitting: Target | null;
  pinnedSha: string | null;
  /** A journal write failed: the update cannot go on until it works. */
  journalError: Failure | null;
  refusedHead: AppState['refusedHead'];
  retryRequest: AppState['retryRequest'];
};

const iso = (ms: number) => new Date(ms).toISOString();

function stateName(j: Journal, view: RunnerView): AppState['state'] {
  if (j.active) return j.active.retryAt !== null ? 'retrying' : 'updating';
  if (view.admitting) return 'waiting';
  if (j.last && (j.last.state !== 'deployed' || j.deployed?.sha === j.last.target.sha)) return j.last.state;
  return j.deployed ? 'deployed' : 'idle';
}

/** The app's state message, derived from its journal: "deployed X" only when the journal says X completed. */
export function describeApp(app: AppConfig, agentId: string, shape: Shape, j: Journal, view: RunnerView, now: number): AppState {
  const a = j.active;
  const last = j.last;
  const aimed = a?.target ?? view.admitting ?? last?.target ?? null;
  const interrupted = a ? a.interrupted : last?.interrupted;
  const retryStep = a && a.retryAt !== null ? phaseSteps(a.phase, shape)[a.step] : undefined;
  // A held target never ran: the ref stays the one of what runs.
  const heldOnly = !a && !view.admitting && last?.state === 'held';
  return {
    v: SCHEMA_VERSION,
    agent: agentId,
    app: app.name,
    repo: app.repo,
    ref: (heldOnly ? j.deployed?.ref : aimed?.ref) ?? j.deployed?.ref ?? null,
    state: stateName(j, view),
    sha: j.deployed?.sha ?? j.baseline,
    targetSha: aimed?.sha ?? null,
    deliveryId: aimed?.deliveryId ?? null,
    lastError: view.journalError ?? a?.error ?? a?.failure ?? (a ? null : (last?.error ?? null)),
    durations: a?.durations ?? last?.durations ?? {},
    updatedAt: iso(now),
    follows: app.branch !== undefined ? { kind: 'branch', pattern: app.branch } : { kind: 'tag', pattern: app.tag! },
    rollout: app.rollout,
    pinnedSha: view.pinnedSha,
    retrying: retryStep ? { step: retryStep.kind, attempt: a!.attempt, nextAt: iso(a!.retryAt!) } : null,
    interrupted: interrupted ? { ...interrupted, at: iso(interrupted.at) } : null,
    refusedHead: view.refusedHead,
    retryRequest: view.retryRequest,
    refused: !a && last?.refused ? { sha: last.target.sha, ...last.refused, at: iso(last.at) } : null,
  };
}

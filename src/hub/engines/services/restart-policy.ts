/**
 * Nomad's restart-then-reschedule, for one placement: an exited process is restarted on the same
 * agent after an exponential backoff; the (attempts + 1)-th exit within `intervalMs` marks the
 * service `failing` and moves it to another agent. Moving waits with its own backoff only when
 * no other agent fits.
 */
export type RestartPolicy = {
  /** Restarts allowed on one agent within intervalMs (Nomad `restart.attempts`). */
  attempts: number;
  intervalMs: number;
  /** Backoff before the n-th restart: delayMs · factor^(n-1), at most maxDelayMs. */
  delayMs: number;
  factor: number;
  maxDelayMs: number;
  /** Backoff before retrying a crash-looping service when no other agent fits (same growth, per consecutive crash loop). */
  rescheduleDelayMs: number;
  rescheduleMaxDelayMs: number;
};

/**
 * Nomad's service defaults are 2 attempts in 30 min with a fixed 15 s delay; a fleet agent's
 * service is usually a small daemon that crashes for a reason that repeats, so: restart quickly
 * (1 s, 2 s, 4 s), move after the 4th exit in 5 minutes, and stop hammering at 30 s / 5 min.
 */
export const DEFAULT_RESTART: RestartPolicy = {
  attempts: 3,
  intervalMs: 5 * 60_000,
  delayMs: 1000,
  factor: 2,
  maxDelayMs: 30_000,
  rescheduleDelayMs: 5000,
  rescheduleMaxDelayMs: 5 * 60_000,
};

export type ExitDecision =
  /** Restart run `restart` of the same placement at `at`. */
  | { kind: 'restart'; at: number; exits: number[] }
  /** Crash loop: end the placement here and place it elsewhere. */
  | { kind: 'reschedule'; exits: number[] };

function grow(n: number, base: number, factor: number, max: number): number {
  return Math.min(max, base * factor ** Math.max(0, n - 1));
}

/** `exits`: earlier exit times of this placement; the ones older than the window are dropped. */
export function onExit(exits: readonly number[], now: number, policy: RestartPolicy): ExitDecision {
  const recent = [...exits.filter((t) => t > now - policy.intervalMs), now];
  if (recent.length > policy.attempts) return { kind: 'reschedule', exits: recent };
  return { kind: 'restart', at: now + grow(recent.length, policy.delayMs, policy.factor, policy.maxDelayMs), exits: recent };
}

/** Delay before retrying the `n`-th consecutive crash loop (1-based) when no other agent fits. */
export function rescheduleDelayMs(n: number, policy: RestartPolicy): number {
  return grow(n, policy.rescheduleDelayMs, policy.factor, policy.rescheduleMaxDelayMs);
}

import { jobEnvironment, MAX_JOB_PAYLOAD_CHARS, MAX_PARAM_CHARS, MAX_PARAMS, PARAM_NAME, type JobStart } from '../../src/shared/contract/jobs-messages.js';
import type { ActionConfig, ActionsConfig } from '../action-config.js';

export type StartPlan = { action: ActionConfig; env: Record<string, string>; timeoutSeconds: number };

/** A value the environment can carry: execve cuts strings at NUL. */
const hasNul = (s: string) => s.includes('\0');

/**
 * Whether this agent runs a start, and with what: only an action it offers, from its own config,
 * with the run's facts and parameters as environment only. Returns the refusal in words otherwise.
 */
export function planStart(start: JobStart, actions: ActionsConfig, offered: readonly string[]): StartPlan | { refused: string } {
  const action = offered.includes(start.action) ? actions[start.action] : undefined;
  if (!action) return { refused: `action "${start.action.slice(0, 128)}" is not offered to jobs by this agent (offered: ${offered.join(', ')})` };
  const params = Object.entries(start.params);
  if (params.length > MAX_PARAMS) return { refused: `${params.length} params: at most ${MAX_PARAMS}` };
  for (const [name, value] of params) {
    if (!PARAM_NAME.test(name)) return { refused: `param name "${name.slice(0, 64)}": use 1-64 of A-Z, 0-9 and "_"` };
    if (value.length > MAX_PARAM_CHARS) return { refused: `param ${name}: ${value.length} characters, at most ${MAX_PARAM_CHARS}` };
    if (hasNul(value)) return { refused: `param ${name}: holds a NUL character` };
  }
  if (start.payload.length > MAX_JOB_PAYLOAD_CHARS) return { refused: `trigger payload of ${start.payload.length} characters: at most ${MAX_JOB_PAYLOAD_CHARS} fit in the environment` };
  if ([start.payload, start.topic, start.name].some(hasNul)) return { refused: 'the trigger topic, payload or run name holds a NUL character' };
  const env = { ...action.env, ...jobEnvironment(start) };
  return { action, env, timeoutSeconds: Math.min(start.timeoutSeconds, action.timeoutSeconds) };
}

import { describe, expect, it } from 'vitest';
import { ActionConfig } from '../../agent/action-config.js';
import { AgentConfig } from '../../agent/config.js';
import { planStart } from '../../agent/jobs/start-check.js';
import type { JobStart } from '../../src/shared/contract/jobs-messages.js';

const actions = { build: ActionConfig.parse({ command: ['make'], env: { FIXED: '1' }, timeoutSeconds: 100 }), other: ActionConfig.parse({ command: ['true'] }) };
const start = (over: Partial<JobStart> = {}): JobStart => ({ v: 1, run: '0123456789', job: 'j', name: 'j-0123456789', action: 'build', topic: 't/1', payload: '{}', params: { SAMPLE: 'x' }, timeoutSeconds: 600, ...over });

describe('planStart (agent side of a job start)', () => {
  it('runs only offered actions, with the run as environment and the smaller timeout', () => {
    expect(planStart(start(), actions, ['build'])).toMatchObject({
      timeoutSeconds: 100,
      env: { FIXED: '1', PUSHFLEET_JOB_RUN: '0123456789', PUSHFLEET_JOB_NAME: 'j', PUSHFLEET_JOB_TOPIC: 't/1', PUSHFLEET_JOB_PAYLOAD: '{}', PUSHFLEET_JOB_PARAM_SAMPLE: 'x' },
    });
    expect(planStart(start({ action: 'other' }), actions, ['build'])).toEqual({ refused: 'action "other" is not offered to jobs by this agent (offered: build)' });
    expect(planStart(start({ action: 'nope' }), actions, ['build', 'nope'])).toMatchObject({ refused: expect.stringContaining('not offered') });
  });

  it('refuses bad params with the reason', () => {
    expect(planStart(start({ params: { 'lower': 'x' } }), actions, ['build'])).toMatchObject({ refused: expect.stringContaining('param name "lower"') });
    expect(planStart(start({ params: { A: 'x\0y' } }), actions, ['build'])).toEqual({ refused: 'param A: holds a NUL character' });
    expect(planStart(start({ params: { A: 'x'.repeat(5000) } }), actions, ['build'])).toMatchObject({ refused: expect.stringContaining('at most 4096') });
    expect(planStart(start({ payload: 'x'.repeat(200_000) }), actions, ['build'])).toMatchObject({ refused: expect.stringContaining('at most 100000') });
  });
});

describe('agent config actions: and jobs:', () => {
  const base = { mqtt: { url: 'mqtt://x' }, acceptUnsigned: true };
  it('an agent with only actions and jobs is valid; defaults apply', () => {
    const cfg = AgentConfig.parse({ ...base, actions: { build: { command: ['make'] } }, jobs: { actions: ['build'] } });
    expect(cfg.jobs).toEqual({ actions: ['build'], maxConcurrent: 1 });
    expect(cfg.actions.build).toMatchObject({ timeoutSeconds: 3600, stopTimeout: 10, env: {} });
  });
  it('names a jobs action missing from actions:', () => {
    const r = AgentConfig.safeParse({ ...base, actions: {}, jobs: { actions: ['build'] } });
    expect(r.success || r.error.issues[0]).toMatchObject({ path: ['jobs', 'actions', 0], message: 'no action "build" under actions:' });
    expect(AgentConfig.safeParse({ ...base, actions: { b: { command: 'make all' } }, jobs: { actions: ['b'] } }).success).toBe(false);
  });
});

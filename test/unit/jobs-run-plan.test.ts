import { describe, expect, it } from 'vitest';
import type { AgentRow, JobParam, Run } from '../../src/hub/engines/jobs/model.js';
import { completionOf, fillParams, newRunId, planTrigger, RUN_ID } from '../../src/hub/engines/jobs/run-plan.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const LIMITS = { maxPayloadBytes: 1024, maxActiveRuns: 10, activeRuns: 0 };

function row(over: Partial<AgentRow> = {}): AgentRow {
  return { line: 2, jobName: 'resize', mqttTopic: 'images/+/new', concurrency: 'allow', params: {}, executor: 'agent', action: 'resize', selector: {}, timeoutSeconds: 60, ...over };
}
const param = (p: Partial<JobParam> = {}): JobParam => ({ pattern: '[a-z]+', required: false, ...p });
const trigger = (payload: string, topic = 'images/a/new') => ({ topic, payload: Buffer.from(payload) });
const active = (id: string): Run => ({ id, job: 'resize', name: `resize-${id}`, executor: 'agent', topic: 't', payload: '', params: {}, status: 'running', createdAt: T0 - 1000, startedAt: T0 - 900 });

describe('planTrigger', () => {
  it('makes a pending run with a unique id and a Job name of its own', () => {
    const a = planTrigger(row(), trigger('hello'), [], LIMITS, T0);
    const b = planTrigger(row(), trigger('hello'), [], LIMITS, T0);
    expect(a.run).toMatchObject({ job: 'resize', executor: 'agent', topic: 'images/a/new', payload: 'hello', status: 'pending', createdAt: T0, params: {} });
    expect(a.run.id).toMatch(RUN_ID);
    expect(a.run.name).toBe(`resize-${a.run.id}`);
    expect(b.run.id).not.toBe(a.run.id);
    expect(newRunId()).toMatch(RUN_ID);
  });

  it('allow starts beside runs under way; forbid records the trigger as a failed run naming the one under way; replace cancels them', () => {
    const running = [active('00000000aa'), active('00000000bb')];
    expect(planTrigger(row(), trigger(''), running, LIMITS, T0, '0000000001')).toEqual({ run: expect.objectContaining({ status: 'pending' }), replaced: [] });
    const forbid = planTrigger(row({ concurrency: 'forbid' }), trigger(''), running, LIMITS, T0, '0000000001');
    expect(forbid.run).toMatchObject({ status: 'failed', endedAt: T0, reason: 'skipped: run 00000000aa, 00000000bb still under way (concurrency: forbid)' });
    expect(forbid.replaced).toEqual([]);
    expect(planTrigger(row({ concurrency: 'forbid' }), trigger(''), [], LIMITS, T0).run.status).toBe('pending');
    const replace = planTrigger(row({ concurrency: 'replace' }), trigger(''), running, LIMITS, T0, '0000000001');
    expect(replace.run.status).toBe('pending');
    expect(replace.replaced).toEqual(running.map((run) => ({ run, reason: 'replaced by run 0000000001' })));
  });

  it('fails the run at once, saying why, past maxActiveRuns; replaced runs free their places', () => {
    const full = { ...LIMITS, maxActiveRuns: 2, activeRuns: 2 };
    expect(planTrigger(row(), trigger(''), [], full, T0).run).toMatchObject({ status: 'failed', reason: '2 runs already under way: engines.jobs.maxActiveRuns (2) reached' });
    expect(planTrigger(row({ concurrency: 'replace' }), trigger(''), [active('00000000aa')], full, T0).run.status).toBe('pending');
  });

  it('fails an oversized payload without keeping it', () => {
    const plan = planTrigger(row(), trigger('x'.repeat(1025)), [], LIMITS, T0);
    expect(plan.run).toMatchObject({ status: 'failed', payload: '', reason: 'payload of 1025 bytes is over engines.jobs.maxPayloadBytes (1024)' });
  });

  it('fills declared parameters from a JSON payload; a payload that does not fit fails the run with the reason', () => {
    const r = row({ params: { size: param({ pattern: '[0-9]+', required: true }), mode: param({ default: 'fit' }), note: param() } });
    expect(planTrigger(r, trigger('{"size": 640, "other": [1]}'), [], LIMITS, T0).run).toMatchObject({ status: 'pending', params: { size: '640', mode: 'fit' } });
    expect(planTrigger(r, trigger('not json'), [], LIMITS, T0).run).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^payload is not JSON \(job resize declares parameters size, mode, note\)/) });
    expect(planTrigger(r, trigger('[1]'), [], LIMITS, T0).run.reason).toBe('payload is not a JSON object (job resize declares parameters size, mode, note)');
    expect(planTrigger(r, trigger('{"mode": "fill"}'), [], LIMITS, T0).run.reason).toBe('parameter size is required (job resize)');
    expect(planTrigger(r, trigger('{"size": "64; rm -rf /"}'), [], LIMITS, T0).run.reason).toBe('parameter size does not match [0-9]+ (job resize): "64; rm -rf /"');
    expect(planTrigger(r, trigger('{"size": {"a": 1}}'), [], LIMITS, T0).run.reason).toBe('parameter size must be a string, number or boolean (job resize)');
  });

  it('anchors patterns: a value with a matching part only is refused', () => {
    const r = row({ params: { size: param({ pattern: '[0-9]+|small' }) } });
    expect(fillParams(r, '{"size": "small"}')).toEqual({ size: 'small' });
    expect(fillParams(r, '{"size": "12x"}')).toMatch(/does not match/);
    expect(fillParams(r, '{"size": "notsmall"}')).toMatch(/does not match/);
  });

  it('takes any payload as it is when the row declares no parameters, and an empty one as {} when it does', () => {
    expect(fillParams(row(), 'raw bytes, not JSON')).toEqual({});
    expect(fillParams(row({ params: { mode: param({ default: 'fit' }) } }), '')).toEqual({ mode: 'fit' });
  });
});

describe('completionOf', () => {
  it('carries run, status, reason, start, end, duration and the trigger payload', () => {
    const run: Run = { ...active('00000000aa'), status: 'failed', reason: 'exit code 3', endedAt: T0 + 100 };
    expect(completionOf(run)).toEqual({
      v: 1,
      run: '00000000aa',
      job: 'resize',
      name: 'resize-00000000aa',
      status: 'failed',
      reason: 'exit code 3',
      topic: 't',
      payload: '',
      start: new Date(T0 - 900).toISOString(),
      end: new Date(T0 + 100).toISOString(),
      durationMs: 1000,
    });
  });

  it('has no start or duration for a run that never started, and refuses a run still under way', () => {
    const plan = planTrigger(row({ concurrency: 'forbid' }), trigger(''), [active('00000000aa')], LIMITS, T0);
    expect(completionOf(plan.run)).toMatchObject({ status: 'failed', start: null, durationMs: null, end: new Date(T0).toISOString() });
    expect(() => completionOf(active('00000000aa'))).toThrow(/has not ended/);
  });
});

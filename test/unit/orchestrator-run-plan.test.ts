import { describe, expect, it } from 'vitest';
import type { NodeOutcome } from '../../src/shared/contract/orchestrator-messages.js';
import type { PlanStep } from '../../src/hub/engines/orchestrator/native-playbook.js';
import { emptyNodeReport, RunPlan } from '../../src/hub/engines/orchestrator/run-plan.js';

const step = (id: string, deps: string[] = [], extra: Partial<PlanStep> = {}): PlanStep => ({
  id,
  kind: 'action',
  targets: ['n'],
  action: 'X',
  args: [],
  durationMs: null,
  timeoutMs: 1000,
  deps,
  onFailure: 'stop',
  ...extra,
});
const barrier = (id: string, deps: string[]): PlanStep => ({ ...step(id, deps), kind: 'barrier', action: null, targets: [] });
const ids = (steps: PlanStep[]) => steps.map((s) => s.id);
const result = (node: string, outcome: NodeOutcome, startedAt: number | null = null) => ({ ...emptyNodeReport(node), outcome, startedAt });

describe('run plan', () => {
  it('starts independent steps together and dependants after, through barriers', () => {
    const plan = new RunPlan([step('a'), step('b'), barrier('bar', ['a', 'b']), step('c', ['bar'])]);
    expect(ids(plan.advance())).toEqual(['a', 'b']);
    expect(plan.advance()).toEqual([]); // already running: never handed out twice
    plan.begin('a', ['n1', 'n2'], 100);
    plan.begin('b', ['n3'], 100);
    expect(plan.report('a', result('n1', 'ok', 100.1))).toBeNull();
    expect(plan.report('a', result('n2', 'ok', 100.4))).toEqual({ stepId: 'a', status: 'ok', finished: true, stopRun: false });
    expect(plan.advance()).toEqual([]);
    plan.report('b', result('n3', 'ok'));
    expect(ids(plan.advance())).toEqual(['c']);
    plan.begin('c', ['n1'], 200);
    plan.report('c', result('n1', 'ok'));
    expect(plan.finished).toBe(true);
    expect(plan.status).toBe('ok');
    const a = plan.steps()[0]!;
    expect(a.skewMs).toBeCloseTo(0.3);
    expect(plan.steps()[2]).toMatchObject({ kind: 'barrier', status: 'ok' });
  });

  it('ignores results from nodes that are not part of the step, or that came twice', () => {
    const plan = new RunPlan([step('a')]);
    plan.advance();
    plan.begin('a', ['n1'], 0);
    expect(plan.report('a', result('intruder', 'ok'))).toBeNull();
    expect(plan.report('b', result('n1', 'ok'))).toBeNull();
    plan.report('a', result('n1', 'failed'));
    expect(plan.report('a', result('n1', 'ok'))).toBeNull();
    expect(plan.steps()[0]!.nodes[0]!.outcome).toBe('failed');
  });

  it('onFailure stop: the first failing node stops the run, pending steps are skipped', () => {
    const plan = new RunPlan([step('a'), step('b'), step('c', ['a'])]);
    plan.advance();
    plan.begin('a', ['n1', 'n2'], 0);
    plan.begin('b', ['n3'], 0);
    expect(plan.report('a', result('n1', 'lost'))).toEqual({ stepId: 'a', status: 'running', finished: false, stopRun: true });
    expect(plan.unfinished()).toEqual([{ stepId: 'a', node: 'n2' }, { stepId: 'b', node: 'n3' }]);
    expect(plan.report('a', result('n2', 'stopped'))).toMatchObject({ status: 'failed', finished: true, stopRun: false });
    plan.report('b', result('n3', 'stopped'));
    expect(plan.advance()).toEqual([]);
    expect(plan.finished).toBe(true);
    expect(plan.status).toBe('failed');
    expect(plan.steps().map((s) => s.status)).toEqual(['failed', 'cancelled', 'skipped']);
  });

  it('onFailure continue: dependants still run, and the run still ends failed', () => {
    const plan = new RunPlan([step('a', [], { onFailure: 'continue' }), step('b', ['a'])]);
    plan.advance();
    plan.begin('a', ['n1'], 0);
    expect(plan.report('a', result('n1', 'refused'))).toMatchObject({ status: 'failed', stopRun: false });
    expect(ids(plan.advance())).toEqual(['b']);
    plan.begin('b', ['n1'], 0);
    plan.report('b', result('n1', 'ok'));
    expect(plan.status).toBe('failed');
  });

  it('a step that cannot be sent fails without nodes', () => {
    const plan = new RunPlan([step('a'), step('b', ['a'])]);
    plan.advance();
    expect(plan.failStep('a', 'no online node matches {role: x}')).toMatchObject({ status: 'failed', stopRun: true });
    expect(plan.steps()[1]!.status).toBe('skipped');
    expect(plan.finished).toBe(true);
  });

  it('timeouts, lost nodes, cancel and abandon mark only the unreported nodes', () => {
    const plan = new RunPlan([step('a', [], { onFailure: 'continue' }), step('b', [], { onFailure: 'continue' }), step('c', ['a'])]);
    plan.advance();
    plan.begin('a', ['n1', 'n2'], 0);
    plan.begin('b', ['n2', 'n3'], 0);
    plan.report('a', result('n1', 'ok'));
    expect(plan.nodeLost('n2').map((d) => d.stepId)).toEqual(['a']);
    expect(plan.steps()[0]!.nodes.map((n) => n.outcome)).toEqual(['ok', 'lost']);
    expect(plan.timeout('b')).toEqual([{ stepId: 'b', status: 'failed', finished: true, stopRun: false }]);
    expect(plan.steps()[1]!.nodes.map((n) => [n.outcome, n.error])).toEqual([
      ['lost', 'the agent went offline'],
      ['timeout', 'no result within the step timeout'],
    ]);
    expect(ids(plan.advance())).toEqual(['c']);
    plan.begin('c', ['n1'], 0);
    plan.cancel();
    expect(plan.abandon()).toEqual([{ stepId: 'c', status: 'failed', finished: true, stopRun: false }]);
    expect(plan.status).toBe('cancelled');
  });
});

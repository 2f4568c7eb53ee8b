import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { EngineContext } from '../../src/hub/engines/engine.js';
import { OrchestratorEngine } from '../../src/hub/engines/orchestrator/orchestrator-engine.js';
import { OrchestratorConfig } from '../../src/hub/engines/orchestrator/config.js';
import { SCHEMA_VERSION } from '../../src/shared/messages.js';
import { type NodeResult, type RunEvent } from '../../src/shared/contract/orchestrator-messages.js';
import { agentStatusTopic, nodeInfoTopic, nodeResultTopic, runCancelTopic, runRequestTopic, TIME_REQUEST } from '../../src/shared/topics.js';
import { ManualClock } from '../support/manual-clock.js';

function setup() {
  const published: { topic: string; payload: any }[] = [];
  const clock = new ManualClock();
  const ctx = {
    publisher: { publish: async (topic: string, payload: string) => void published.push({ topic, payload: JSON.parse(payload) }) },
    db: {} as EngineContext['db'],
    clock,
    log: pino({ level: 'silent' }),
  } satisfies EngineContext;
  const engine = new OrchestratorEngine(ctx, OrchestratorConfig.parse({ startMargin: 0.1, cancelGrace: 5 }), () => 1_000_000 + clock.time);
  const send = (topic: string, payload: object | string) => engine.handle(topic, Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)));
  const agent = (id: string, role: string, state: 'online' | 'offline' = 'online') => {
    send(agentStatusTopic(id), { v: 1, agent: id, state, labels: { role }, version: 'x', startedAt: null, at: new Date(0).toISOString() });
    send(nodeInfoTopic(id), { v: 1, agent: id, seedNode: id, actions: ['SLEEP'], clock: { offsetMs: 0, rttMs: 0.2, errorMs: 0.1, samples: 8, measuredAt: 0 }, at: 0 });
  };
  const events = () => published.filter((p) => p.topic.endsWith('/events')).map((p) => p.payload as RunEvent);
  const commands = (kind: string) => published.filter((p) => p.topic.endsWith('/command') && p.payload.kind === kind);
  const result = (node: string, stepId: string, phase: 'started' | 'finished', extra: Partial<NodeResult> = {}) =>
    send(nodeResultTopic(node), {
      v: SCHEMA_VERSION, runId: 'r1', stepId, phase, node, outcome: phase === 'finished' ? 'ok' : null, startedAt: 1_000_100.2, endedAt: null,
      lateByMs: 0.2, leadMs: 99, exitCode: phase === 'finished' ? 0 : null, signal: null, stoppedBy: null, clockErrorMs: 0.1, clockOffsetMs: 0, outputTail: '', error: null, ...extra,
    } satisfies NodeResult);
  const run = (yaml: string) => send(runRequestTopic('r1'), { v: 1, runId: 'r1', file: 'p.yaml', playbook: yaml, requestedAt: new Date(0).toISOString() });
  return { engine, clock, published, send, agent, events, commands, result, run };
}

describe('orchestrator engine', () => {
  it('answers clock pings with its receive and send times', () => {
    const { send, published } = setup();
    send(TIME_REQUEST, { v: 1, agent: 'a1', seq: 3, t0: 5 });
    expect(published).toEqual([{ topic: 'pushfleet/orchestrator/time/reply/a1', payload: { v: 1, seq: 3, t0: 5, t1: 1_000_000, t2: 1_000_000 } }]);
  });

  it('runs a step on every matching node at one instant and reports when all have finished', () => {
    const { agent, run, events, commands, result, clock } = setup();
    agent('a1', 'client');
    agent('a2', 'client');
    agent('a3', 'server');
    run('steps:\n  - {id: s, targets: {role: client}, action: SLEEP, args: [1], duration: 2}\n  - {id: t, targets: a3, action: SLEEP, after: [s]}\n');
    const starts = commands('start');
    expect(starts.map((c) => c.topic)).toEqual(['pushfleet/orchestrator/nodes/a1/command', 'pushfleet/orchestrator/nodes/a2/command']);
    expect(starts.map((c) => [c.payload.startAt, c.payload.durationMs, c.payload.args])).toEqual([
      [1_000_100, 2000, ['1']],
      [1_000_100, 2000, ['1']],
    ]);
    result('a1', 's', 'started');
    result('a1', 's', 'finished');
    expect(commands('start')).toHaveLength(2); // t waits for all of s
    clock.advance(50);
    result('a2', 's', 'finished', { startedAt: 1_000_100.5 });
    expect(commands('start').at(-1)!.payload).toMatchObject({ stepId: 't', startAt: 1_000_150 });
    result('a3', 't', 'finished');
    const finished = events().at(-1)!;
    expect(finished.type).toBe('finished');
    if (finished.type !== 'finished') return;
    expect(finished.report.status).toBe('ok');
    expect(finished.report.steps[0]!.skewMs).toBeCloseTo(0.3);
    expect(events().map((e) => e.type)).toEqual(['accepted', 'step', 'node', 'node', 'node', 'step', 'step', 'node', 'step', 'finished']);
  });

  it('fails a step when its agent goes offline, stopping the rest of the run', () => {
    const { agent, run, events, commands, result } = setup();
    agent('a1', 'client');
    agent('a2', 'client');
    run('steps:\n  - {id: s, targets: [a1, a2], action: SLEEP}\n');
    agent('a2', 'client', 'offline');
    expect(commands('stop').map((c) => c.topic)).toEqual(['pushfleet/orchestrator/nodes/a1/command']);
    result('a1', 's', 'finished', { outcome: 'stopped', stoppedBy: 'stop' });
    const last = events().at(-1)!;
    expect(last.type === 'finished' && [last.report.status, last.report.steps[0]!.nodes.map((n) => [n.node, n.outcome])]).toEqual([
      'failed',
      [
        ['a1', 'stopped'],
        ['a2', 'lost'],
      ],
    ]);
  });

  it('times a step out from its start instant, stopping the nodes that never answered', () => {
    const { agent, run, events, commands, clock } = setup();
    agent('a1', 'client');
    run('steps:\n  - {id: s, targets: a1, action: SLEEP, timeout: 1}\n');
    clock.advance(1099);
    expect(commands('stop')).toHaveLength(0);
    clock.advance(1);
    expect(commands('stop')).toHaveLength(1);
    const last = events().at(-1)!;
    expect(last.type === 'finished' && last.report.steps[0]!.nodes[0]).toMatchObject({ outcome: 'timeout' });
  });

  it('on cancel stops every running node and reports after their results or the grace period', () => {
    const { agent, run, send, events, commands, clock } = setup();
    agent('a1', 'client');
    agent('a2', 'client');
    run('steps:\n  - {id: s, targets: [a1, a2], action: SLEEP}\n  - {id: later, targets: a1, action: SLEEP, after: [s]}\n');
    send(runCancelTopic('r1'), { v: 1, runId: 'r1', reason: 'SIGINT' });
    expect(commands('stop').map((c) => c.payload)).toEqual([
      { v: 1, kind: 'stop', runId: 'r1', stepId: 's' },
      { v: 1, kind: 'stop', runId: 'r1', stepId: 's' },
    ]);
    clock.advance(5000);
    const last = events().at(-1)!;
    expect(last.type === 'finished' && [last.report.status, last.report.steps.map((s) => s.status)]).toEqual(['cancelled', ['failed', 'skipped']]);
  });

  it('rejects a run it cannot parse or target', () => {
    const { run, events } = setup();
    run('steps: nope');
    expect(events()).toEqual([expect.objectContaining({ type: 'rejected', error: expect.stringContaining('invalid playbook p.yaml') })]);
    const second = setup();
    second.agent('a1', 'client');
    second.run('steps:\n  - {id: s, targets: {role: db}, action: SLEEP}\n');
    expect(second.events().at(-1)).toMatchObject({ type: 'finished', report: { status: 'failed', steps: [{ error: 'no online orchestrator node matches {role: db}' }] } });
  });
});

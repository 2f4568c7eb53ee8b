import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseNativePlaybook, type NativeParse } from '../../src/hub/engines/orchestrator/native-playbook.js';

const fixture = readFileSync(fileURLToPath(new URL('../fixtures/playbooks/throughput.yaml', import.meta.url)), 'utf8');
const errors = (p: NativeParse) => (p.ok ? [] : p.errors);

describe('native playbook', () => {
  it('parses the fixture with defaults, barrier dependencies and label selectors', () => {
    const parsed = parseNativePlaybook(fixture, 'playbooks/throughput.yaml');
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
    const { name, startMarginMs, steps } = parsed.playbook;
    expect({ name, startMarginMs }).toEqual({ name: 'throughput', startMarginMs: 250 });
    expect(steps.map((s) => [s.id, s.kind, s.deps])).toEqual([
      ['server', 'action', []],
      ['clients', 'action', []],
      ['measured', 'barrier', ['server', 'clients']],
      ['settle', 'action', ['measured']],
    ]);
    expect(steps[0]).toMatchObject({ targets: ['node2'], args: ['5201'], durationMs: 3000, timeoutMs: 33_000, onFailure: 'stop' });
    expect(steps[1]).toMatchObject({ targets: [{ role: 'client' }], timeoutMs: 20_000, durationMs: null, onFailure: 'continue' });
    expect(steps[3]).toMatchObject({ targets: ['node1', 'node2', 'node3'], timeoutMs: 60_000 });
  });

  it('names the run after the file when it has no name, and keeps explicit after: with the barrier', () => {
    const parsed = parseNativePlaybook('steps:\n  - {id: a, targets: n1, action: X}\n  - barrier: b\n  - {id: c, targets: n1, action: X, after: [a]}\n', '/tmp/my-test.yml');
    expect(parsed.ok && parsed.playbook.name).toBe('my-test');
    expect(parsed.ok && parsed.playbook.steps[2]!.deps).toEqual(['b', 'a']);
  });

  it('lists every problem with its key', () => {
    const bad = `
steps:
  - {id: a, targets: [], action: X}
  - {id: b, targets: "n 1", action: X, duration: 10, timeout: 5}
  - {id: c, targets: {}, action: X, onFailure: retry, extra: 1}
  - {barrier: "x/y"}
`;
    const list = errors(parseNativePlaybook(bad, 'bad.yaml'));
    expect(list.some((e) => e.startsWith('steps.0.targets'))).toBe(true);
    expect(list.some((e) => e.startsWith('steps.1.targets'))).toBe(true);
    expect(list).toContain('steps.1.timeout: timeout must be longer than duration');
    expect(list.some((e) => e.startsWith('steps.2.onFailure'))).toBe(true);
    expect(list.some((e) => e.includes('extra'))).toBe(true);
    expect(list.some((e) => e.startsWith('steps.3.barrier'))).toBe(true);
  });

  it('rejects duplicate ids, unknown after: steps and cycles', () => {
    expect(errors(parseNativePlaybook('steps:\n  - {id: a, targets: n, action: X}\n  - {barrier: a}\n', 'p.yaml'))).toEqual(['steps: duplicate id "a"']);
    expect(errors(parseNativePlaybook('steps:\n  - {id: a, targets: n, action: X, after: [zz]}\n', 'p.yaml'))).toEqual(['steps.a.after: unknown step "zz"']);
    const cycle = errors(parseNativePlaybook('steps:\n  - {id: a, targets: n, action: X, after: [b]}\n  - {id: b, targets: n, action: X, after: [a]}\n', 'p.yaml'));
    expect(cycle[0]).toMatch(/^steps: dependency cycle a → b → a/);
  });

  it('rejects YAML that is not a playbook', () => {
    expect(errors(parseNativePlaybook('steps: [', 'p.yaml'))[0]).toMatch(/^not valid YAML/);
    expect(errors(parseNativePlaybook('name: x\n', 'p.yaml'))).toEqual(['steps: Invalid input: expected array, received undefined']);
  });
});

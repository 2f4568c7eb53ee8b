import { describe, expect, it } from 'vitest';
import { resolveAction, splitWords } from '../../agent/node/command-words.js';
import { AgentConfig } from '../../agent/config.js';
import { NodeAction, OrchestratorNodeConfig } from '../../agent/node/node-config.js';

const actions = {
  START: NodeAction.parse({ command: ['iperf3', '-s'], args: 'append', maxArgs: 2 }),
  RESET: NodeAction.parse({ command: ['/opt/reset'] }),
  PORT: NodeAction.parse({ command: ['listen'], args: 'append', argPattern: '^[0-9]{1,5}$' }),
};

describe('node actions from command words', () => {
  it('appends allowed words as separate argv elements', () => {
    expect(resolveAction(actions, 'START', splitWords('  -p 5201 '))).toEqual({ ok: true, action: 'START', argv: ['iperf3', '-s', '-p', '5201'], cwd: undefined });
    expect(resolveAction(actions, 'RESET', [])).toMatchObject({ ok: true, argv: ['/opt/reset'] });
  });

  it('refuses unknown actions, naming what the node offers', () => {
    expect(resolveAction(actions, 'REBOOT', [])).toEqual({ ok: false, reason: 'unknown action "REBOOT" (this node offers: START, RESET, PORT)' });
    expect(resolveAction(actions, 'toString', [])).toMatchObject({ ok: false });
    expect(resolveAction(actions, '__proto__', [])).toMatchObject({ ok: false });
  });

  it('refuses words where the action takes none, too many, or ones its pattern rejects', () => {
    expect(resolveAction(actions, 'RESET', ['now'])).toEqual({ ok: false, reason: 'action RESET takes no arguments' });
    expect(resolveAction(actions, 'START', ['a', 'b', 'c'])).toMatchObject({ ok: false, reason: expect.stringContaining('at most 2') });
    expect(resolveAction(actions, 'PORT', ['80a'])).toMatchObject({ ok: false, reason: expect.stringContaining('argument 1 of PORT') });
    // The default pattern keeps shell metacharacters, quotes and globs out even of appended words.
    for (const word of ['$(reboot)', 'a;b', '`id`', 'a|b', "'x'", '*', 'a&&b', '~root', 'x'.repeat(257)]) {
      expect(resolveAction(actions, 'START', [word]).ok, word).toBe(false);
    }
  });

  it('config: STOP and TERMINATE are built in, patterns must compile', () => {
    expect(OrchestratorNodeConfig.safeParse({ actions: { STOP: { command: ['x'] } } }).success).toBe(false);
    expect(OrchestratorNodeConfig.safeParse({ actions: { A: { command: ['x'], argPattern: '(' } } }).success).toBe(false);
    expect(OrchestratorNodeConfig.safeParse({ actions: { A: { command: 'rm -rf /' } } }).success).toBe(false);
    expect(OrchestratorNodeConfig.parse({ actions: {} })).toMatchObject({ root: 'testlab', queueSize: 4, stopGrace: 5, clock: { samples: 8, resyncSeconds: 60 } });
    expect(OrchestratorNodeConfig.safeParse({ root: 'lab/#', actions: {} }).success).toBe(false);
  });

  it('agent config: an agent may be a node only, with no apps', () => {
    const mqtt = { url: 'mqtt://x' };
    expect(AgentConfig.safeParse({ mqtt, orchestrator: { root: 'lab/floor-2', actions: {} } }).success).toBe(true);
    const neither = AgentConfig.safeParse({ mqtt });
    expect(neither.success || neither.error.issues[0]).toMatchObject({ path: ['apps'], message: 'list at least one app (or configure orchestrator:, jobs: or services:)' });
  });
});

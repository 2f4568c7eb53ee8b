import { describe, expect, it } from 'vitest';
import { AgentConfig } from '../../agent/config.js';
import { parseNotify } from '../../agent/services/notify-socket.js';
import { validateConfig } from '../../src/shared/config-file.js';

describe('agent config services:', () => {
  const base = { mqtt: { url: 'mqtt://x' }, acceptUnsigned: true };

  it('an agent with only actions and services is valid; defaults apply', () => {
    const cfg = AgentConfig.parse({ ...base, actions: { worker: { command: ['/usr/bin/worker'], watchdogSec: 5, lastArgument: true } }, services: { actions: ['worker'] } });
    expect(cfg.services).toEqual({ actions: ['worker'], maxWorkers: 1, stopTimeout: 1 });
    expect(cfg.actions.worker).toMatchObject({ watchdogSec: 5, lastArgument: true, stopTimeout: 10 });
  });

  it('names the offending key: a services action missing from actions:, a bad maxWorkers, stopTimeout or watchdogSec', () => {
    expect(() => validateConfig(AgentConfig, { ...base, actions: { w: { command: ['w'] } }, services: { actions: ['w'], stopTimeout: 0 } }, 'agent.yaml')).toThrow(/services\.stopTimeout/);
    expect(() => validateConfig(AgentConfig, { ...base, actions: {}, services: { actions: ['worker'] } }, 'agent.yaml')).toThrow(/services\.actions\.0.*no action "worker" under actions:/);
    expect(() => validateConfig(AgentConfig, { ...base, actions: { w: { command: ['w'] } }, services: { actions: ['w'], maxWorkers: 0 } }, 'agent.yaml')).toThrow(/services\.maxWorkers/);
    expect(() => validateConfig(AgentConfig, { ...base, actions: { w: { command: ['w'], watchdogSec: -1 } }, services: { actions: ['w'] } }, 'agent.yaml')).toThrow(/actions\.w\.watchdogSec/);
  });
});

describe('parseNotify (sd_notify datagrams a service sends)', () => {
  it('reads READY, WATCHDOG, STOPPING and STATUS, ignores the rest, bounds STATUS', () => {
    expect(parseNotify('READY=1\nSTATUS=serving 3 clients\nMAINPID=42')).toEqual({ ready: true, watchdog: false, watchdogTrigger: false, stopping: false, status: 'serving 3 clients' });
    expect(parseNotify('WATCHDOG=1')).toMatchObject({ watchdog: true, ready: false });
    expect(parseNotify('WATCHDOG=trigger')).toMatchObject({ watchdog: false, watchdogTrigger: true });
    expect(parseNotify('READY=0\nnonsense\n=x')).toEqual({ ready: false, watchdog: false, watchdogTrigger: false, stopping: false });
    expect(parseNotify(`STATUS=${'x'.repeat(2000)}`).status).toHaveLength(512);
  });
});

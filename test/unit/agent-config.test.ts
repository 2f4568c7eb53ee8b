import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentConfig } from '../../agent/config.js';
import { defaultStateDir } from '../../src/shared/default-state-dir.js';
import { validateConfig } from '../../src/shared/config-file.js';

const app = { name: 'web', repo: 'acme/web', branch: 'main', path: '/srv/web', restart: ['true'] };
const saved = { STATE_DIRECTORY: process.env.STATE_DIRECTORY, XDG_STATE_HOME: process.env.XDG_STATE_HOME };

describe('agent config: state, timeouts, retries', () => {
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it("keeps its journals in systemd's StateDirectory, else the XDG state home", () => {
    process.env.STATE_DIRECTORY = '/var/lib/pushfleet-agent:/var/lib/other';
    expect(defaultStateDir('pushfleet-agent')).toBe('/var/lib/pushfleet-agent');
    delete process.env.STATE_DIRECTORY;
    process.env.XDG_STATE_HOME = '/home/ada/.state';
    expect(defaultStateDir('pushfleet-agent')).toBe('/home/ada/.state/pushfleet-agent');
    delete process.env.XDG_STATE_HOME;
    expect(defaultStateDir('pushfleet-agent')).toBe(join(homedir(), '.local', 'state', 'pushfleet-agent'));
    expect(validateConfig(AgentConfig, { mqtt: { url: 'mqtt://x' }, stateDir: '/data/agent', apps: [app] }, 'agent.yaml').stateDir).toBe('/data/agent');
  });

  it('defaults fetchTimeout to 120 s, retries to 5 s doubling up to 300 s, and onInterrupted to redo', () => {
    const cfg = validateConfig(AgentConfig, { mqtt: { url: 'mqtt://x' }, apps: [app] }, 'agent.yaml');
    expect(cfg.apps[0]).toMatchObject({ stepTimeout: 600, fetchTimeout: 120, retryDelay: 5, retryMaxDelay: 300, onInterrupted: 'redo' });
  });

  it('names a bad retry or interruption setting', () => {
    const errors = (extra: Record<string, unknown>) => () => validateConfig(AgentConfig, { mqtt: { url: 'mqtt://x' }, apps: [{ ...app, ...extra }] }, 'agent.yaml');
    expect(errors({ retryDelay: 10, retryMaxDelay: 5 })).toThrow(/apps\.0\.retryMaxDelay: must be at least retryDelay/);
    expect(errors({ onInterrupted: 'ignore' })).toThrow(/apps\.0\.onInterrupted/);
    expect(errors({ fetchTimeout: 0 })).toThrow(/apps\.0\.fetchTimeout/);
  });
});

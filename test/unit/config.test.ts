import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AgentConfig } from '../../agent/config.js';
import { loadAgentConfig } from '../../src/cli/agent-command.js';
import { loadHubConfig } from '../../src/cli/hub-command.js';
import { ConfigError, validateConfig } from '../../src/shared/config-file.js';

const example = (name: string) => fileURLToPath(new URL(`../../config/${name}`, import.meta.url));

const minimalApp = { name: 'web', repo: 'acme/web', branch: 'main', path: '/srv/web', restart: ['true'] };
const agentErrors = (raw: unknown) => {
  try {
    validateConfig(AgentConfig, raw, 'agent.yaml');
    return '';
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
};

describe('config', () => {
  it('loads the commented examples', () => {
    const hub = loadHubConfig({ config: example('hub.example.yaml') });
    expect(hub).toMatchObject({ http: { port: 3000 }, broker: { port: 1883 }, webhook: { path: '/webhook' } });
    expect(hub.mqtt).toBeUndefined();
    const agent = loadAgentConfig(example('agent.example.yaml'));
    expect(agent.id).toBe('web-1');
    expect(agent.apps.map((a) => a.name)).toEqual(['web', 'worker']);
    expect(agent.apps[1]).toMatchObject({ branch: 'release/*', update: [], stepTimeout: 600 });
  });

  it('runs the hub on embedded defaults with no file, flags overriding keys', () => {
    const hub = loadHubConfig({ port: 4000, brokerPort: 0 });
    expect(hub).toMatchObject({ http: { host: '0.0.0.0', port: 4000 }, broker: { host: '127.0.0.1', port: 0, persistence: 'sqlite' } });
    expect(() => loadHubConfig({ mqttUrl: 'http://nope' })).toThrow(/mqtt\.url/);
  });

  it('defaults the remote to GitHub and the id to the hostname', () => {
    const cfg = validateConfig(AgentConfig, { mqtt: { url: 'mqtt://x' }, apps: [minimalApp] }, 'agent.yaml');
    expect(cfg.apps[0]!.remote).toBe('https://github.com/acme/web.git');
    expect(cfg.id.length).toBeGreaterThan(0);
  });

  it('names each offending key', () => {
    expect(agentErrors({ mqtt: { url: 'mqtt://x' }, apps: [{ ...minimalApp, restart: 'systemctl restart web' }] })).toMatch(/apps\.0\.restart/);
    expect(agentErrors({ mqtt: { url: 'mqtt://x' }, apps: [{ ...minimalApp, branch: undefined }] })).toMatch(/apps\.0\.branch: set exactly one/);
    expect(agentErrors({ mqtt: { url: 'mqtt://x' }, apps: [minimalApp, minimalApp] })).toMatch(/apps\.1\.name: duplicate/);
    expect(agentErrors({ mqtt: { url: 'mqtt://x' }, apps: [{ ...minimalApp, repo: 'acme' }] })).toMatch(/apps\.0\.repo/);
    expect(agentErrors({ mqtt: { url: 'mqtt://x' }, apps: [{ ...minimalApp, name: 'a/b' }] })).toMatch(/apps\.0\.name/);
    expect(agentErrors({ mqtt: { url: 'mqtt://x' }, apps: [{ ...minimalApp, typo: 1 }] })).toMatch(/typo/);
    expect(agentErrors({ apps: [] })).toMatch(/mqtt: .*expected object/);
    expect(agentErrors({ mqtt: { url: 'mqtt://x' }, apps: [] })).toMatch(/apps: list at least one app/);
    expect(agentErrors({ mqtt: { url: 'tcp://x' }, apps: [minimalApp] })).toMatch(/mqtt\.url/);
  });
});

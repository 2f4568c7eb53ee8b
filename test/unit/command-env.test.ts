import { afterEach, describe, expect, it } from 'vitest';
import { commandEnv } from '../../agent/command-env.js';

describe('commandEnv: what an app command runs with', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  });

  it("drops the agent's own secrets (MQTT password, tokens, secrets), keeps the rest and adds the step's variables", () => {
    Object.assign(process.env, { PUSHFLEET_MQTT_PASSWORD: 'pw', PUSHFLEET_GITHUB_TOKEN: 't', PUSHFLEET_WEBHOOK_SECRET: 's', PUSHFLEET_MQTT_USERNAME: 'node-1', PUSHFLEET_LOG_JSON: '1' });
    const env = commandEnv({ PUSHFLEET_SHA: 'abc' });
    expect(Object.keys(env).filter((k) => /PASSWORD|TOKEN|SECRET/.test(k) && k.startsWith('PUSHFLEET_'))).toEqual([]);
    expect(env).toMatchObject({ PUSHFLEET_MQTT_USERNAME: 'node-1', PUSHFLEET_LOG_JSON: '1', PUSHFLEET_SHA: 'abc', PATH: process.env.PATH });
  });
});

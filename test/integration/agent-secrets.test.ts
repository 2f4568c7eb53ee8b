import { afterEach, describe, expect, it } from 'vitest';
import { startAgentProcess } from '../support/agent-process.js';
import { startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';

/** The agent logs every output line of the commands it runs: they must never see its secrets. */
describe("the agent's secrets stay out of its apps' commands and its log", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('an update command that prints its whole environment prints no secret of the agent', async () => {
    const printEnv = [process.execPath, '-e', 'for (const [k, v] of Object.entries(process.env)) console.log(`${k}=${v}`)'];
    const f = await startAppFixture(cleanup, 'aedes', { update: [printEnv] });
    const secrets = { PUSHFLEET_GITHUB_TOKEN: 'tok-0123456789abcdef', PUSHFLEET_WEBHOOK_SECRET: 'whsec-0123456789abcdef' };
    const agent = await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig], env: { ...secrets, PUSHFLEET_PLAIN_SETTING: 'plain-value' } });
    const sha = f.git.commit('A', { 'app.txt': 'A\n' });
    await f.push(sha);
    await f.reached('deployed', sha);
    // The command's output is in the log (so the check below is not vacuous), its environment too…
    const printed = agent.lines.filter((l) => l.step === 'update').map((l) => String(l.msg));
    expect(printed).toContain(`PUSHFLEET_SHA=${sha}`);
    expect(printed).toContain('PUSHFLEET_PLAIN_SETTING=plain-value');
    // …but not the agent's secrets.
    for (const value of Object.values(secrets)) expect(agent.stdout + agent.stderr).not.toContain(value);
  });
});

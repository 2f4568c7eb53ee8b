import { afterEach, describe, expect, it } from 'vitest';
import { startAgentProcess } from '../support/agent-process.js';
import { startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';
import { CliProcess } from '../support/cli-process.js';
import { hubProcesses } from '../support/hub-process.js';

/** Exit code of `proc`, or 'still running' once `ms` passed (the old stop waited for the broker forever). */
const exitWithin = (proc: CliProcess, ms: number) =>
  Promise.race([proc.exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), ms))]);

/**
 * SIGTERM while the broker stalls (a reboot stops broker and services at once; mosquitto is
 * SIGSTOPped here so the connection stays up and nothing is acknowledged): the goodbye and the
 * unsubscribes get a deadline, and the process exits instead of waiting for a PUBACK forever.
 */
describe('a service stopped while its broker stalls', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('agent: exits 0 within the close deadline', async () => {
    const f = await startAppFixture(cleanup, 'mosquitto');
    const agent = await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig] });
    const a = f.git.commit('A', { 'app.txt': 'A\n' });
    expect((await f.push(a)).status).toBe(200);
    await f.reached('deployed', a);
    f.hub.broker!.pause();
    cleanup.defer(() => f.hub.broker!.resume());
    void agent.stop('SIGTERM');
    expect(await exitWithin(agent, 15_000)).toBe(0);
  });

  it('hub: exits 0 within the close deadline', async () => {
    const hubs = await hubProcesses(cleanup, 'mosquitto');
    const hub = await hubs.start();
    // Answered once the start resolved, so its SIGTERM handler is in place.
    await fetch(new URL('/readyz', hubs.webhookUrl));
    hubs.broker!.pause();
    cleanup.defer(() => hubs.broker!.resume());
    void hub.stop('SIGTERM');
    expect(await exitWithin(hub, 15_000)).toBe(0);
  });
});

/**
 * Agents take heads at QoS 0 (HEAD_SUBSCRIPTION_QOS): no acknowledgement, no resend. What brings
 * an agent to the newest head is the retained head, delivered again at the SUBSCRIBE of every
 * connect. Here the head's PUBLISH to the agent is lost in flight: its connection is partitioned
 * (a TCP proxy holds the bytes) when the push comes, then dies, taking them with it. The real
 * agent process must reconnect and deploy that head, with a clean session and with a persistent
 * one (mqtt.clientId), on the embedded broker and on mosquitto.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startAgentProcess } from '../support/agent-process.js';
import { linesOf, startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { BROKERS } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

describe.each(BROKERS)('a head lost in flight to the agent, over %s', (broker) => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it.each([
    ['a clean session', {}],
    ['a persistent session', { clientId: 'node-1-session' }],
  ])('is deployed once the agent is back, with %s', async (_name, mqtt) => {
    const f = await startAppFixture(cleanup, broker);
    const target = new URL(f.hub.mqttUrl);
    const proxy = await TcpProxy.start(cleanup, { host: target.hostname, port: Number(target.port) });
    const agent = await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig], via: (url) => proxy.urlFor(url), mqtt });
    const a = f.git.commit('A', { 'app.txt': 'A\n' });
    expect((await f.push(a)).status).toBe(200);
    await f.reached('deployed', a);

    proxy.cut();
    const b = f.git.commit('B', { 'app.txt': 'B\n' });
    expect((await f.push(b, a)).status).toBe(200);
    // The broker has sent the head, into the partition: the agent has not had it.
    await waitFor('the head held in the partition', () => proxy.heldBytes() > 0);
    expect(linesOf(f.restartLog)).toEqual([a]);
    const reconnects = agent.lines.filter((l) => l.msg === 'agent online').length;
    proxy.drop();

    await f.reached('deployed', b);
    expect(agent.lines.filter((l) => l.msg === 'agent online').length).toBeGreaterThan(reconnects);
    await waitFor('the restart for B', () => linesOf(f.restartLog).length === 2);
    expect(linesOf(f.restartLog)).toEqual([a, b]);
  });
});

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { parseStat } from '../../agent/process-group.js';
import { agentServiceOutputTopic, agentServiceStateTopic, servicePlacementTopic, serviceLeaseTopic, serviceRenewTopic, type ServiceOutput } from '../../src/shared/contract/services-engine-messages.js';
import type { AgentServiceState, GrantedService, LeaseGrant, LeaseRenewal } from '../../src/shared/contract/services-messages.js';
import type { AgentStatus } from '../../src/shared/messages.js';
import { agentStatusTopic } from '../../src/shared/topics.js';
import { startAgentProcess } from '../support/agent-process.js';
import { Cleanup } from '../support/cleanup.js';
import type { CliProcess } from '../support/cli-process.js';
import { startMosquitto, type ExternalBroker } from '../support/mosquitto.js';
import { makeHubKeys, testSigner } from '../support/signer.js';
import { waitFor } from '../support/wait.js';

const RECORD = fileURLToPath(new URL('../fixtures/services/record.sh', import.meta.url));
const AGENT = 'a1';
const STOP_TIMEOUT_MS = 500;

/** The live (not zombie) processes of a group. */
const members = (pgid: number): number[] =>
  readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .flatMap((n) => {
      try {
        const stat = parseStat(readFileSync(`/proc/${n}/stat`, 'utf8'));
        return stat !== null && stat.pgrp === pgid && !stat.zombie ? [stat.pid] : [];
      } catch {
        return []; // gone meanwhile
      }
    });

/**
 * The hub's side of the services lease, played by the test over a real mosquitto with the ACL of
 * the topic table: it answers each renewal with a grant signed by a test hub key (while
 * `answering`), listing `desired`, and records what the agent publishes.
 */
class LeaseHub {
  desired: LeaseGrant['services'] = {};
  answering = true;
  leaseMs = 1500;
  readonly renewals: { at: number; renewal: LeaseRenewal }[] = [];
  readonly states: AgentServiceState[] = [];
  readonly outputs: ServiceOutput[] = [];
  readonly statuses: AgentStatus[] = [];
  /** The last answered renewal, and when it arrived here (after the agent sent it: its a0 is earlier). */
  lastAnswered: LeaseRenewal | undefined;
  lastAnsweredAt = 0;
  private grantedAt = 0;

  constructor(
    readonly client: MqttClient,
    readonly signer: ReturnType<typeof testSigner>,
  ) {
    client.on('message', (topic, raw) => {
      if (raw.length === 0) return;
      const json = JSON.parse(raw.toString());
      if (topic === serviceRenewTopic(AGENT)) {
        this.renewals.push({ at: performance.now(), renewal: json });
        if (this.answering) {
          this.lastAnswered = json;
          this.lastAnsweredAt = performance.now();
          this.grant();
        }
      } else if (topic === agentStatusTopic(AGENT)) this.statuses.push(json);
      else if (topic.endsWith('/output')) this.outputs.push(json);
      else if (topic.endsWith('/state')) this.states.push(json);
    });
  }

  static async start(cleanup: Cleanup, broker: ExternalBroker, keyFile: string): Promise<LeaseHub> {
    const client = await mqtt.connectAsync((await broker.user('hub', 'hub')).url, { reconnectPeriod: 0 });
    cleanup.defer(() => client.endAsync(true));
    const hub = new LeaseHub(client, testSigner(keyFile));
    await client.subscribeAsync([serviceRenewTopic(AGENT), agentServiceStateTopic(AGENT, '+'), agentServiceOutputTopic(AGENT, '+'), agentStatusTopic(AGENT)], { qos: 1 });
    return hub;
  }

  /** The grant for `latest` (by default the agent's latest renewal; the hub's own grants echo one answered already), sealed by `seal`. */
  grant(seal: (topic: string, payload: string) => Buffer | string = (t, p) => this.signer.seal(t, p), latest = this.renewals.at(-1)!.renewal): void {
    const grant: LeaseGrant = { v: 1, session: latest.session, seq: latest.seq, grantedAt: ++this.grantedAt, leaseMs: this.leaseMs, renewMs: 300, services: this.desired };
    this.client.publish(serviceLeaseTopic(AGENT), seal(serviceLeaseTopic(AGENT), JSON.stringify(grant)), { qos: 1 });
  }

  placement(name: string, generation: number, agent: string | null, seal = true): void {
    const payload = JSON.stringify({ v: 1, name, generation, agent });
    this.client.publish(servicePlacementTopic(name), seal ? this.signer.seal(servicePlacementTopic(name), payload) : payload, { qos: 1, retain: true });
  }

  state(name: string, generation: number, state: AgentServiceState['state']): Promise<AgentServiceState> {
    return waitFor(
      () => `${name}@${generation} ${state}; states: ${JSON.stringify(this.states.map((s) => `${s.name}@${s.generation} ${s.state} ${s.reason ?? ''}`))}`,
      () => this.states.find((s) => s.name === name && s.generation === generation && s.state === state),
    );
  }

  /** Waits until `n` more renewals came in (the agent had time to act on anything sent before). */
  async renewalsPass(n: number): Promise<void> {
    const from = this.renewals.length;
    await waitFor(`${n} renewals`, () => this.renewals.length >= from + n);
  }
}

const web = (generation: number, action = 'worker', restarts = 0): GrantedService => ({ generation, restarts, action, arg: 'two words' });

describe('agent services over MQTT (a real agent process, a real broker, the test playing the hub)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function setup() {
    const dir = cleanup.tempDir('pushfleet-svc-mqtt-');
    const broker = await startMosquitto({ auth: true });
    cleanup.defer(() => broker.stop());
    const keys = makeHubKeys(dir);
    const hub = await LeaseHub.start(cleanup, broker, keys.keyFile);
    const records = join(dir, 'records');
    const stateDir = join(dir, 'state');
    const agent = () =>
      startAgentProcess(cleanup, {
        id: AGENT,
        mqttUrl: broker.url,
        hubPublicKey: keys.pubFile,
        stateDir,
        logLevel: 'info',
        actions: {
          worker: { command: [RECORD], env: { RECORDS: records }, lastArgument: true },
          stubborn: { command: [RECORD], env: { RECORDS: records, STUBBORN: '1' } },
        },
        services: { actions: ['worker', 'stubborn'], maxWorkers: 2, stopTimeout: STOP_TIMEOUT_MS / 1000 },
      });
    const lines = () => (existsSync(records) ? readFileSync(records, 'utf8').split('\n').filter(Boolean) : []);
    const line = (prefix: string) => waitFor(() => `a record "${prefix}"; have ${JSON.stringify(lines())}`, () => lines().find((l) => l.startsWith(prefix)));
    const pgidOf = async (prefix: string) => Number(/pgid=(\d+)/.exec(await line(prefix))![1]);
    const groupGone = (pgid: number) => waitFor(() => `process group ${pgid} gone; left ${JSON.stringify(members(pgid))}`, () => members(pgid).length === 0, 5000);
    return { hub, agent, broker, lines, line, pgidOf, groupGone, stateDir };
  }

  it('runs only what a signed grant lists, with the argument and generation; a grant without it stops it; states, output and status tell', async () => {
    const { hub, agent, lines, line, pgidOf, groupGone } = await setup();
    hub.answering = false;
    await agent();
    expect(hub.statuses.at(-1)).toMatchObject({ state: 'online', services: { actions: { worker: { stopTimeoutMs: STOP_TIMEOUT_MS }, stubborn: { stopTimeoutMs: STOP_TIMEOUT_MS } }, maxWorkers: 2, running: 0 } });
    await hub.renewalsPass(1);
    // Unsigned, and signed by another key: neither starts anything.
    hub.desired = { web: web(1) };
    hub.grant((_t, p) => p);
    const forger = testSigner(makeHubKeys(cleanup.tempDir('pushfleet-forger-')).keyFile);
    hub.grant((t, p) => forger.seal(t, p));
    await hub.renewalsPass(3);
    expect(lines()).toEqual([]);
    expect(hub.states).toEqual([]);

    hub.answering = true;
    const pgid = await pgidOf('start web 1 ');
    expect(await line('start web 1 ')).toMatch(/ arg=two words last=two words notify=set /);
    expect((await hub.state('web', 1, 'running')).restarts).toBe(0);
    await waitFor('the status with one running', () => hub.statuses.at(-1)?.services?.running === 1);
    await waitFor('its output', () => hub.outputs.find((o) => o.name === 'web' && o.output.includes('out web 1\n')));

    // A cancel: the hub's own grant, unasked, echoing the seq it answered last.
    hub.answering = false;
    hub.desired = {};
    hub.grant(undefined, hub.lastAnswered);
    expect(await hub.state('web', 1, 'ended')).toMatchObject({ agent: AGENT, reason: 'stopped: not in the lease grant (cancelled or moved)', code: 0 });
    hub.answering = true;
    await line('stop 1');
    await groupGone(pgid);
    await waitFor('the status with none running', () => hub.statuses.at(-1)?.services?.running === 0);
    expect(hub.outputs.at(-1)).toMatchObject({ name: 'web', generation: 1, restarts: 0 });
    expect(hub.outputs.at(-1)!.output).toContain('err web\n');
    expect(lines().filter((l) => l.startsWith('start'))).toHaveLength(1);
  });

  it('a lease not renewed stops the copy by a0 + leaseMs, SIGKILL after services.stopTimeout at the latest', async () => {
    const { hub, agent, pgidOf, groupGone, line } = await setup();
    await agent();
    hub.desired = { web: web(2, 'stubborn') };
    const pgid = await pgidOf('start web 2 ');
    await hub.state('web', 2, 'running');
    hub.answering = false;
    const lastAnswered = hub.lastAnsweredAt;
    const ended = await hub.state('web', 2, 'ended');
    const endedAt = performance.now();
    expect(ended).toMatchObject({ reason: 'stopped: lease ran out', signal: 'SIGKILL' });
    await line('ignored TERM 2'); // it was asked first
    await groupGone(pgid);
    // a0 came before the last answered renewal reached the test, and the copy held its lease until a0 + leaseMs.
    expect(endedAt - lastAnswered).toBeLessThan(hub.leaseMs + STOP_TIMEOUT_MS + 1000);
    expect(endedAt - lastAnswered).toBeGreaterThan(hub.leaseMs / 2);
    // Renewing goes on: the hub can grant again.
    await hub.renewalsPass(2);
  });

  it('stops a copy at once on a signed placement of a higher generation elsewhere, not on an unsigned one', async () => {
    const { hub, agent, line, pgidOf, groupGone } = await setup();
    hub.leaseMs = 60_000;
    await agent();
    hub.desired = { web: web(3) };
    const pgid = await pgidOf('start web 3 ');
    await hub.state('web', 3, 'running');
    hub.placement('web', 4, 'a2', false);
    await hub.renewalsPass(3);
    expect(members(pgid).length).toBeGreaterThan(0);
    const asked = performance.now();
    hub.placement('web', 4, 'a2');
    expect(await hub.state('web', 3, 'ended')).toMatchObject({ reason: 'stopped: superseded by generation 4' });
    expect(performance.now() - asked).toBeLessThan(hub.leaseMs / 10);
    await line('stop 3');
    await groupGone(pgid);
    // The hub's grant still listing generation 3 (sent before it heard) is refused, never run.
    expect(await hub.state('web', 3, 'refused')).toMatchObject({ reason: 'generation 3 is older than generation 4 seen here' });
  });

  it('kill -9 of the agent takes its copy down (the guard); a copy that outlived its guard too is stopped when the agent starts again', async () => {
    const { hub, agent, pgidOf, groupGone, lines } = await setup();
    const first: CliProcess = await agent();
    hub.desired = { web: web(5) };
    const pgid5 = await pgidOf('start web 5 ');
    await hub.state('web', 5, 'running');
    process.kill(first.pid, 'SIGKILL');
    await first.exited;
    await groupGone(pgid5);

    hub.desired = { web: web(6) };
    const second = await agent();
    // The copy of generation 5 is reported ended by the restarted agent (its guard killed it).
    expect(await hub.state('web', 5, 'ended')).toMatchObject({ reason: 'ended with the previous run of the agent' });
    const pgid6 = await pgidOf('start web 6 ');
    await hub.state('web', 6, 'running');
    // Its guard stopped too (SIGSTOP): kill -9 of the agent now leaves the copy running.
    const guard = guardOf(pgid6);
    process.kill(guard, 'SIGSTOP');
    cleanup.defer(() => {
      try {
        process.kill(guard, 'SIGKILL');
        process.kill(-pgid6, 'SIGKILL'); // only if the agent failed to: the test leaves nothing behind
      } catch {
        // gone
      }
    });
    hub.answering = false;
    process.kill(second.pid, 'SIGKILL');
    await second.exited;
    await new Promise((r) => setTimeout(r, 300));
    expect(members(pgid6).length).toBeGreaterThan(0);

    hub.desired = {};
    hub.answering = true;
    await agent();
    // Gone by "agent online": stopped before the restarted agent renewed.
    expect(members(pgid6)).toEqual([]);
    expect(await hub.state('web', 6, 'ended')).toMatchObject({ reason: expect.stringMatching(/^stopped: the agent restarted: service \(.*record\.sh, process group \d+, \d+ process(es)?\) was still running; terminated \(SIGTERM\)/) });
    expect(lines().filter((l) => l.startsWith('start'))).toEqual([expect.stringMatching(/^start web 5 /), expect.stringMatching(/^start web 6 /)]);
  });
});

/** The guard of the copy whose process group is `pgid`: `sh -c <script> pushfleet-service-guard <pgid>`. */
function guardOf(pgid: number): number {
  for (const n of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const argv = readFileSync(`/proc/${n}/cmdline`, 'utf8').split('\0');
      if (argv[3] === 'pushfleet-service-guard' && argv[4] === String(pgid)) return Number(n);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no guard of process group ${pgid}`);
}

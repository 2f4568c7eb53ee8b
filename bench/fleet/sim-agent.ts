/**
 * A simulated agent speaking the real agent protocol over MQTT, for benchmarks and scale tests:
 * retained status (env "bench") and app state (web follows main, rollout: true); on a push it
 * registers in the rollout's channel with the SemaphoreClient (uid = agent id), waits for its go,
 * sleeps a fake update step, publishes its new app state and releases, as agent/app-runner does.
 */
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { parseEnvelope } from '../../src/shared/signing/envelope.js';
import { SemaphoreClient } from '../../src/semaphore-client/client.js';
import { decode, PushMessage, SCHEMA_VERSION, type AgentStatus, type AppState } from '../../src/shared/messages.js';
import { agentStatusTopic, appStateTopic, pushTopic, rolloutChannel, rolloutId } from '../../src/shared/topics.js';

export const SIM_ENV = 'bench';
export const SIM_APP = 'web';
export const SIM_REPO = 'acme/web';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const newSha = () => randomBytes(20).toString('hex');

/** Times (performance.now) of one round, shared by the simulated agents. */
export type RoundLog = { pushedAt: number; pushSeen: number[]; grants: number[]; releases: number[]; updating: number; maxUpdating: number; errors: string[] };
export const emptyLog = (): RoundLog => ({ pushedAt: 0, pushSeen: [], grants: [], releases: [], updating: 0, maxUpdating: 0, errors: [] });

/** One simulated agent: retained status and app state, and a fake update on each push, admitted by the rollout. */
export class SimAgent {
  private sha = newSha();
  private readonly sem: SemaphoreClient;

  constructor(
    readonly id: string,
    private readonly client: MqttClient,
    private readonly stepMs: number,
    private readonly log: () => RoundLog,
  ) {
    // Grants on rollout channels come signed; a simulated host reads them as the real agent does after checking.
    this.sem = new SemaphoreClient(client, { open: (_topic, payload, deliver) => deliver(parseEnvelope(payload) ? Buffer.from(parseEnvelope(payload)!.payload) : payload) });
  }

  static async connect(id: string, url: string, stepMs: number, log: () => RoundLog): Promise<SimAgent> {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, clientId: `bench-${id}` });
    const agent = new SimAgent(id, client, stepMs, log);
    client.on('message', (topic, payload) => {
      if (topic !== pushTopic(SIM_REPO)) return;
      log().pushSeen.push(performance.now());
      const push = decode(PushMessage, payload);
      if (push.ok) void agent.update(push.value.after).catch((err: Error) => log().errors.push(`${id}: ${err.message}`));
    });
    await client.subscribeAsync(pushTopic(SIM_REPO), { qos: 1 });
    const status: AgentStatus = { v: SCHEMA_VERSION, agent: id, state: 'online', labels: { env: SIM_ENV }, version: 'bench', startedAt: null, at: new Date().toISOString() };
    await client.publishAsync(agentStatusTopic(id), JSON.stringify(status), { qos: 1, retain: true });
    await agent.report('deployed', null);
    return agent;
  }

  private report(state: AppState['state'], targetSha: string | null): Promise<unknown> {
    const msg: AppState = {
      v: SCHEMA_VERSION, agent: this.id, app: SIM_APP, repo: SIM_REPO, ref: 'refs/heads/main', state, sha: this.sha, targetSha, lastError: null, durations: {},
      updatedAt: new Date().toISOString(), follows: { kind: 'branch', pattern: 'main' }, rollout: true, pinnedSha: null, deliveryId: null, retrying: null, interrupted: null, refusedHead: null, retryRequest: null, refused: null,
    };
    return this.client.publishAsync(appStateTopic(this.id, SIM_APP), JSON.stringify(msg), { qos: 1, retain: true });
  }

  /** Waits for the grant, runs the fake step, reports, then gives the slot back (as agent/app-runner does). */
  private async update(sha: string): Promise<void> {
    const lease = await this.sem.acquire(rolloutChannel(rolloutId(SIM_APP, SIM_ENV, sha)), { uid: this.id, timeout: 600, replace: true });
    const log = this.log();
    log.grants.push(performance.now());
    log.maxUpdating = Math.max(log.maxUpdating, ++log.updating);
    await sleep(this.stepMs);
    this.sha = sha;
    await this.report('deployed', sha);
    log.updating--;
    log.releases.push(performance.now());
    await lease.release();
  }

  close(): Promise<void> {
    return this.client.endAsync(true);
  }
}


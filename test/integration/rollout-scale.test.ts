import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyLog, newSha, SIM_APP, SIM_ENV, SIM_REPO, SimAgent } from '../../bench/fleet/sim-agent.js';
import { applyRolloutEvent, RolloutEvent, RolloutSnapshot } from '../../src/shared/contract/rollout-messages.js';
import { decode } from '../../src/shared/messages.js';
import { rolloutEventsTopic, rolloutId, rolloutStateTopic } from '../../src/shared/topics.js';
import { Cleanup } from '../support/cleanup.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { SECRET, startTestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const AGENTS = 300;
const BATCH = 20;
const STEP_MS = 30;
/** Connections opened at once. */
const CONNECT_CHUNK = 50;
/** The hub's default snapshotIntervalMs. */
const INTERVAL_MS = 250;

/** What a reader of a rollout's two topics gets: every retained snapshot and every event, as they arrive. */
async function follow(cleanup: Cleanup, url: string, id: string) {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  cleanup.defer(() => client.endAsync(true));
  const snapshots: RolloutSnapshot[] = [];
  const events: RolloutEvent[] = [];
  client.on('message', (topic, payload) => {
    if (topic === rolloutStateTopic(id)) {
      const d = decode(RolloutSnapshot, payload);
      if (d.ok) snapshots.push(d.value);
    } else if (topic === rolloutEventsTopic(id)) {
      const d = decode(RolloutEvent, payload);
      if (d.ok) events.push(d.value);
    }
  });
  await client.subscribeAsync([rolloutStateTopic(id), rolloutEventsTopic(id)], { qos: 1 });
  return { snapshots, events };
}

describe(`a rollout over ${AGENTS} simulated agents on a test hub's broker`, () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('never has more hosts updating than its batch, updates every host, and each retained snapshot is the first one with the events up to its seq applied', async () => {
    const hub = await startTestHub(cleanup, 'aedes', { engines: { rollouts: { defaults: { batchSize: BATCH, canary: 0, maxUnavailable: BATCH, failureThreshold: 1 } } } });
    const log = emptyLog();
    const agents: SimAgent[] = [];
    cleanup.defer(() => Promise.all(agents.map((a) => a.close())));
    for (let i = 0; i < AGENTS; i += CONNECT_CHUNK) {
      const ids = Array.from({ length: Math.min(CONNECT_CHUNK, AGENTS - i) }, (_, k) => `sim-${String(i + k).padStart(3, '0')}`);
      agents.push(...(await Promise.all(ids.map((id) => SimAgent.connect(id, hub.mqttUrl, STEP_MS, () => log)))));
    }
    const sha = newSha();
    const id = rolloutId(SIM_APP, SIM_ENV, sha);
    const seen = await follow(cleanup, hub.mqttUrl, id);
    // The hub plans from the agents' retained app states; one it has not read yet joins when it registers.
    await new Promise((r) => setTimeout(r, 500));

    const started = Date.now();
    const res = await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ repo: SIM_REPO, after: sha })));
    expect(res.status).toBe(200);
    const last = () => seen.snapshots.at(-1);
    const done = await waitFor(
      () => `rollout ${id} to succeed: ${seen.events.length} events, last snapshot ${JSON.stringify({ ...last(), hosts: undefined })}; agents: ${log.errors.slice(0, 3).join('; ')}`,
      () => (last()?.status === 'succeeded' ? last() : log.errors.length > 0 && Promise.reject(new Error(log.errors.join('; ')))),
      60_000,
    );
    const elapsed = Date.now() - started;

    expect(done.hosts).toHaveLength(AGENTS);
    expect(done.hosts.every((h) => h.state === 'succeeded')).toBe(true);
    expect(done.counts).toEqual({ succeeded: AGENTS });
    expect(log.maxUpdating).toBeLessThanOrEqual(BATCH);
    expect(log.grants).toHaveLength(AGENTS);

    // Every change, numbered 1… without a gap, the last one being what the final snapshot includes.
    await waitFor('every event up to the final snapshot', () => seen.events.length >= done.seq);
    const events = [...seen.events].sort((a, b) => a.seq - b.seq);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: done.seq }, (_, i) => i + 1));
    // Replayed, the hub never had more than the batch updating at once.
    let updating = 0;
    let most = 0;
    for (const e of events) {
      if (e.agent === null) continue;
      updating += (e.state === 'updating' ? 1 : 0) - (e.from === 'updating' ? 1 : 0);
      most = Math.max(most, updating);
    }
    expect(most).toBeLessThanOrEqual(BATCH);

    // Each snapshot is exactly the first one with the events after it, up to its own seq, applied.
    const [first, ...later] = seen.snapshots;
    let replay = first!;
    let applied = 0;
    for (const snap of later) {
      for (; applied < events.length && events[applied]!.seq <= snap.seq; applied++) replay = applyRolloutEvent(replay, events[applied]!);
      expect(replay).toEqual(snap);
    }
    expect(replay.seq).toBe(done.seq);

    // Rewritten at a bounded rate, not on every change: each status once at once, else at most once per interval.
    const statuses = events.filter((e) => e.agent === null).length;
    expect(seen.snapshots.length).toBeLessThanOrEqual(statuses + 2 + Math.ceil(elapsed / INTERVAL_MS));
    expect(seen.snapshots.length).toBeLessThan(events.length / 10);
  }, 120_000);
});

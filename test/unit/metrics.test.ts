import { describe, expect, it } from 'vitest';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { UpdateCounter } from '../../src/hub/metrics/update-counter.js';
import { ViewsEngine } from '../../src/hub/views/views-engine.js';
import type { EngineContext } from '../../src/hub/engines/engine.js';
import { HubMetrics } from '../../src/hub/metrics/hub-metrics.js';
import { labelSeries, OTHER, UNSET } from '../../src/hub/metrics/label-series.js';
import { fileAppState, type AppUpdates } from '../../src/hub/metrics/update-outcomes.js';
import { MetricsConfig } from '../../src/hub/metrics/config.js';
import { HubConfig } from '../../src/hub/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { SCHEMA_VERSION, type AppState } from '../../src/shared/messages.js';
import { agentStatusTopic, appStateTopic } from '../../src/shared/topics.js';
import { ManualClock } from '../support/manual-clock.js';

const T = '2026-01-01T00:00:00.000Z';
const SHA = 'b'.repeat(40);
const app = (patch: Partial<AppState> = {}): AppState => ({
  v: SCHEMA_VERSION, agent: 'h1', app: 'web', repo: 'acme/web', ref: 'refs/heads/main', state: 'deployed', sha: SHA, targetSha: SHA, deliveryId: 'd1', lastError: null,
  durations: { total: 4200 }, updatedAt: T, follows: { kind: 'branch', pattern: 'main' }, rollout: false, pinnedSha: null, retrying: null, interrupted: null, refusedHead: null, retryRequest: null, refused: null, ...patch,
});

describe('agents by label: a bounded breakdown', () => {
  const agents = [
    ...Array.from({ length: 5 }, (_, i) => ({ online: i < 4, labels: { env: 'prod', host: `p${i}` } })),
    { online: true, labels: { env: 'staging', host: 's0' } },
    { online: false, labels: { env: 'dev', host: 'd0' } },
    { online: true, labels: { host: 'x0' } },
  ];

  it('counts each kept value online and offline, the most common values first, the rest as __other__', () => {
    expect(labelSeries(agents, ['env'], 2)).toEqual([
      { label: 'env', value: 'prod', state: 'online', agents: 4 },
      { label: 'env', value: 'prod', state: 'offline', agents: 1 },
      // Ties (one agent each) by name: __unset__, then dev and staging, which are summed.
      { label: 'env', value: UNSET, state: 'online', agents: 1 },
      { label: 'env', value: UNSET, state: 'offline', agents: 0 },
      { label: 'env', value: OTHER, state: 'online', agents: 1 },
      { label: 'env', value: OTHER, state: 'offline', agents: 1 },
    ]);
  });

  it('keeps a label per host to maxValues + 1 values, and the sums whole', () => {
    const series = labelSeries(agents, ['host'], 3);
    expect(new Set(series.map((s) => s.value)).size).toBe(4);
    expect(series.reduce((n, s) => n + s.agents, 0)).toBe(agents.length);
    expect(labelSeries(agents, [], 3)).toEqual([]);
  });
});

describe('updates ended, from app state transitions', () => {
  it('counts an outcome once per update, not its republishing nor where the app stood at the start', () => {
    /** The updates a sequence of app states (live unless `retained`) ends, from what the hub knew. */
    const ends = (states: (Partial<AppState> & { retained?: boolean })[]) => {
      let known: AppUpdates | undefined;
      return states.flatMap(({ retained = false, ...patch }) => {
        const filed = fileAppState(known, app(patch), retained);
        known = filed.known;
        return filed.ended ? [`${filed.ended.outcome} ${filed.ended.seconds}`] : [];
      });
    };
    expect(ends([{ retained: true }])).toEqual([]); // the start: where it stands
    expect(ends([{}])).toEqual(['deployed 4.2']); // an agent new to the hub, just deployed
    // A push: waiting for the grant, back to "deployed" a moment, then the update.
    const next = { targetSha: 'c'.repeat(40), deliveryId: 'd2' };
    expect(ends([{ retained: true }, { state: 'waiting', ...next }, {}, { state: 'updating', ...next }, { ...next, durations: { total: 1500 } }])).toEqual(['deployed 1.5']);
    // Republished (agent restart, a pin): a new updatedAt, the same update.
    expect(ends([{ retained: true }, { updatedAt: '2026-01-02T00:00:00.000Z', pinnedSha: SHA }, { retained: true }])).toEqual([]);
    // A retry of the same push fails again: two updates ran.
    expect(ends([{ state: 'updating' }, { state: 'failed', durations: {} }, { state: 'retrying' }, { state: 'failed', durations: {} }])).toEqual(['failed undefined', 'failed undefined']);
    // Ended while the hub's connection was down: the retained copy differs from what the hub knew.
    expect(ends([{ retained: true }, { ...next, state: 'rolled-back', retained: true }])).toEqual(['rolled-back 4.2']);
    for (const state of ['idle', 'waiting', 'updating', 'retrying', 'held'] as const) expect(ends([{ state }])).toEqual([]);
  });

  it('follows agents over MQTT messages through the read model: presence, labels and updates; malformed payloads and heartbeats change nothing', () => {
    const ended: string[] = [];
    const ctx = { log: createLogger('test', 'silent'), clock: new ManualClock() };
    const counter = new UpdateCounter(ctx, 2, (outcome, seconds) => ended.push(`${outcome} ${seconds}`));
    const views = new ViewsEngine(ctx as unknown as EngineContext, () => undefined, undefined, counter.appState, { agents: 2, appsPerAgent: 10, heads: 1, deliveries: 1, playbookRuns: 1 });
    const fleet = { handle: views.handle.bind(views), agents: () => views.fleet.labelled() };
    const status = (agent: string, state: 'online' | 'offline', labels = { env: 'prod' }) =>
      Buffer.from(JSON.stringify({ v: SCHEMA_VERSION, agent, state, labels, version: '0.1.0', startedAt: null, at: T }));
    const live = { dup: false, retained: false };
    // An app state may come before its agent's status: followed, not yet listed.
    fleet.handle(appStateTopic('h1', 'web'), Buffer.from(JSON.stringify(app())), { dup: false, retained: true });
    expect([...fleet.agents()]).toEqual([]);
    fleet.handle(agentStatusTopic('h1'), status('h1', 'online'), live);
    fleet.handle(appStateTopic('h1', 'web'), Buffer.from(JSON.stringify(app({ state: 'updating', deliveryId: 'd2' }))), live);
    fleet.handle(appStateTopic('h1', 'web'), Buffer.from(JSON.stringify(app({ deliveryId: 'd2', durations: { total: 1500 } }))), live);
    fleet.handle(appStateTopic('h1', 'web'), Buffer.from('{"not": "an app state"}'), live);
    fleet.handle('pushfleet/agents/h1/heartbeat', Buffer.from('{}'), live);
    fleet.handle(agentStatusTopic('h2'), status('h2', 'offline', { env: 'dev' }), live);
    fleet.handle(agentStatusTopic('h3'), status('h3', 'online'), live); // past maxAgents 2: left out
    expect(ended).toEqual(['deployed 1.5']);
    expect([...fleet.agents()]).toEqual([{ online: true, labels: { env: 'prod' } }, { online: false, labels: { env: 'dev' } }]);
    fleet.handle(agentStatusTopic('h2'), Buffer.alloc(0), live); // cleared: forgotten
    fleet.handle(agentStatusTopic('h1'), status('h1', 'offline'), live);
    expect([...fleet.agents()]).toEqual([{ online: false, labels: { env: 'prod' } }]);
  });
});

describe('HubMetrics', () => {
  const values = async (metrics: HubMetrics, name: string): Promise<MetricValue<string>[]> => {
    const all = (await metrics.registry.getMetricsAsJSON()) as MetricObjectWithValues<MetricValue<string>>[];
    const found = all.find((m) => m.name === name);
    if (!found) throw new Error(`no ${name}`);
    return found.values;
  };

  it('reads every gauge from the engines at each scrape, zeros included, and leaves out the families of engines that are off', async () => {
    const metrics = new HubMetrics({ agentLabels: ['env'], maxLabelValues: 5 });
    let rollouts: Record<string, number> = { running: 1 };
    metrics.readFrom({
      agents: () => [{ online: true, labels: { env: 'prod' } }],
      rollouts: () => rollouts,
      semaphore: () => [{ channel: 'deploys', holders: 2, queued: 3 }],
    });
    expect((await values(metrics, 'pushfleet_rollouts')).find((v) => v.labels.state === 'running')?.value).toBe(1);
    rollouts = { succeeded: 1 };
    const now = await values(metrics, 'pushfleet_rollouts');
    expect(now.find((v) => v.labels.state === 'running')?.value).toBe(0);
    expect(now.find((v) => v.labels.state === 'succeeded')?.value).toBe(1);
    expect(now).toHaveLength(7);
    expect(await values(metrics, 'pushfleet_semaphore_queue_length')).toEqual([{ labels: { channel: 'deploys' }, value: 3 }]);
    expect(await values(metrics, 'pushfleet_job_runs')).toEqual([]);
    expect(await values(metrics, 'pushfleet_agents_by_label')).toContainEqual({ labels: { label: 'env', value: 'prod', state: 'online' }, value: 1 });
    const text = (await metrics.scrape()).body;
    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter');
  });

  it('counts deliveries and updates from 0, every result present before the first', async () => {
    const metrics = new HubMetrics({ agentLabels: [], maxLabelValues: 5 });
    metrics.readFrom({ agents: () => [] });
    expect((await values(metrics, 'pushfleet_webhook_deliveries_total')).map((v) => `${v.labels.result} ${v.value}`)).toContain('rejected 0');
    metrics.delivered('rejected');
    metrics.updateEnded('failed', 3);
    expect((await values(metrics, 'pushfleet_webhook_deliveries_total')).find((v) => v.labels.result === 'rejected')?.value).toBe(1);
    expect((await values(metrics, 'pushfleet_update_duration_seconds')).find((v) => v.labels.le === 5 && v.labels.outcome === 'failed')?.value).toBe(1);
  });
});

describe('metrics config', () => {
  it('closes /metrics by default, breaks agents down by env, and names the key of a bad value', () => {
    expect(HubConfig.parse({}).metrics).toEqual({ allowAnonymous: false, agentLabels: ['env'], maxLabelValues: 20, maxAgents: 100_000 });
    const bad = (metrics: unknown) => HubConfig.safeParse({ metrics }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(bad({ allowAnonymous: 'yes' })).toEqual([expect.stringMatching(/^metrics\.allowAnonymous: /)]);
    expect(bad({ agentLabels: ['env', 'env'] })).toEqual(['metrics.agentLabels: each key once']);
    expect(bad({ maxLabelValues: 0 })).toEqual([expect.stringMatching(/^metrics\.maxLabelValues: /)]);
    expect(bad({ scrape: true })).toEqual([expect.stringMatching(/^metrics: /)]);
    expect(MetricsConfig.parse({ allowAnonymous: true }).allowAnonymous).toBe(true);
  });

  it('takes http.publicUrl only as an absolute http(s) URL', () => {
    expect(HubConfig.parse({ http: { publicUrl: 'https://hub.example.com/fleet' } }).http.publicUrl).toBe('https://hub.example.com/fleet');
    for (const publicUrl of ['hub.example.com', 'ftp://hub.example.com', '/fleet', 'javascript:alert(1)']) {
      expect(HubConfig.safeParse({ http: { publicUrl } }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(['http.publicUrl: expected an absolute http(s) URL, e.g. https://hub.example.com']);
    }
  });
});

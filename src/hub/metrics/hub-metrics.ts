import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { RolloutStatus } from '../../shared/contract/rollout-messages.js';
import { ServiceStatusName } from '../../shared/contract/services-engine-messages.js';
import { FINISHED, type RunStatus } from '../engines/jobs/model.js';
import { DELIVERY_RESULTS, type DeliveryResult } from '../webhook/route.js';
import { labelSeries, type LabelledAgent } from './label-series.js';
import { UPDATE_OUTCOMES, type UpdateOutcome } from './update-outcomes.js';

const JOB_RUN_STATUSES: readonly RunStatus[] = ['pending', 'running', ...FINISHED];

/**
 * Where the gauges are read at each scrape: the engines' own state, so a count is what the hub
 * holds at that moment and cannot drift from it. An engine that is off has no source, and its
 * family has no series (absent, not 0).
 */
export type MetricSources = {
  agents(): Iterable<LabelledAgent>;
  rollouts?(): Partial<Record<string, number>>;
  semaphore?(): { channel: string; holders: number; queued: number }[];
  jobRuns?(): Partial<Record<string, number>>;
  services?(): Partial<Record<string, number>>;
};

export type AgentBreakdown = { agentLabels: readonly string[]; maxLabelValues: number };

/**
 * The hub's Prometheus registry (its own, not prom-client's global one: a process may run more
 * than one hub, as the tests do). Counters and histograms count what this process saw and start
 * at 0 on each start (Prometheus' rate() and increase() take such resets in their stride);
 * gauges are read from the engines at scrape time (readFrom).
 */
export class HubMetrics {
  readonly registry = new Registry();
  private readonly deliveries: Counter<'result'>;
  private readonly publishSeconds: Histogram;
  private readonly updates: Counter<'outcome'>;
  private readonly updateSeconds: Histogram<'outcome'>;

  constructor(private readonly breakdown: AgentBreakdown) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.deliveries = new Counter({ name: 'pushfleet_webhook_deliveries_total', help: 'Webhook requests by what became of them, since the hub started', labelNames: ['result'], registers });
    for (const result of DELIVERY_RESULTS) this.deliveries.inc({ result }, 0);
    this.publishSeconds = new Histogram({
      name: 'pushfleet_push_publish_seconds',
      help: "Seconds from a webhook push's arrival to the broker's acknowledgement of its event and head",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.updates = new Counter({ name: 'pushfleet_updates_total', help: "App updates the agents reported ended, by outcome, since the hub started", labelNames: ['outcome'], registers });
    this.updateSeconds = new Histogram({
      name: 'pushfleet_update_duration_seconds',
      help: "Seconds an app update took, as its agent measured it (durations.total), by outcome",
      labelNames: ['outcome'],
      buckets: [0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800],
      registers,
    });
    for (const outcome of UPDATE_OUTCOMES) this.updates.inc({ outcome }, 0);
  }

  /** Registers the gauges, each read from `sources` at every scrape. */
  readFrom(sources: MetricSources): void {
    const registers = [this.registry];
    const gauge = <L extends string>(name: string, help: string, labelNames: L[], read: (set: (labels: Record<L, string>, value: number) => void) => void) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          read((labels, value) => this.set(labels, value));
        },
      });
    /** Every status of `statuses`, zeros included; nothing when the engine is off. */
    const byStatus =
      <L extends string>(label: L, statuses: readonly string[], read: (() => Partial<Record<string, number>>) | undefined) =>
      (set: (labels: Record<L, string>, value: number) => void) => {
        const counts = read?.();
        if (counts) for (const status of statuses) set({ [label]: status } as Record<L, string>, counts[status] ?? 0);
      };
    gauge('pushfleet_agents', 'Agents the hub knows of (their retained status), online or offline', ['state'], (set) => {
      const n = { online: 0, offline: 0 };
      for (const a of sources.agents()) n[a.online ? 'online' : 'offline']++;
      set({ state: 'online' }, n.online);
      set({ state: 'offline' }, n.offline);
    });
    gauge(
      'pushfleet_agents_by_label',
      'Agents per value of each label key of metrics.agentLabels, online or offline (at most metrics.maxLabelValues values a key, the rest summed as __other__; __unset__: agents without the key)',
      ['label', 'value', 'state'],
      (set) => {
        for (const s of labelSeries(sources.agents(), this.breakdown.agentLabels, this.breakdown.maxLabelValues)) set({ label: s.label, value: s.value, state: s.state }, s.agents);
      },
    );
    gauge('pushfleet_rollouts', "Rollouts in the hub's history (engines.rollouts.history) by state", ['state'], byStatus('state', RolloutStatus.options, sources.rollouts));
    const channels = (pick: 'holders' | 'queued') => (set: (labels: Record<'channel', string>, value: number) => void) => {
      for (const c of sources.semaphore?.() ?? []) set({ channel: c.channel }, c[pick]);
    };
    gauge('pushfleet_semaphore_holders', 'Jobs holding a place of each semaphore channel holding jobs (an idle channel is not listed)', ['channel'], channels('holders'));
    gauge('pushfleet_semaphore_queue_length', 'Jobs waiting in each semaphore channel holding jobs (an idle channel is not listed)', ['channel'], channels('queued'));
    gauge('pushfleet_job_runs', 'Job runs the hub keeps (active ones and engines.jobs.history) by status', ['status'], byStatus('status', JOB_RUN_STATUSES, sources.jobRuns));
    gauge('pushfleet_services', 'Services the services engine holds, by status', ['status'], byStatus('status', ServiceStatusName.options, sources.services));
  }

  delivered(result: DeliveryResult): void {
    this.deliveries.inc({ result });
  }

  published(seconds: number): void {
    this.publishSeconds.observe(seconds);
  }

  /** An update an agent reported ended (update-counter.ts). */
  readonly updateEnded = (outcome: UpdateOutcome, seconds: number | undefined): void => {
    this.updates.inc({ outcome });
    if (seconds !== undefined) this.updateSeconds.observe({ outcome }, seconds);
  };

  /** The scrape's body, and its content type. */
  async scrape(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HubMetrics } from '../../src/hub/metrics/hub-metrics.js';

type Target = { expr: string; datasource: { uid: string } };
type Panel = { id: number; title: string; datasource: { uid: string }; targets: Target[] };
type Dashboard = { uid: string; panels: Panel[]; templating: { list: { name: string; type: string; query: unknown }[] } };

const dashboard = JSON.parse(readFileSync(new URL('../../config/grafana/pushfleet.json', import.meta.url), 'utf8')) as Dashboard;

/** The metric names a PromQL expression reads (histogram series by their family's name). */
const metricsOf = (expr: string) => [...expr.matchAll(/\b(?:pushfleet|process|nodejs)_[a-z0-9_]+/g)].map(([name]) => name.replace(/_(bucket|sum|count)$/, ''));

describe('the Grafana dashboard (config/grafana/pushfleet.json)', () => {
  it('asks for its Prometheus data source, and every panel and query uses it', () => {
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const panel of dashboard.panels) {
      expect(panel.datasource.uid, panel.title).toBe('${datasource}');
      for (const t of panel.targets) expect(t.datasource.uid, panel.title).toBe('${datasource}');
    }
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
  });

  it('has one panel per pushfleet metric family the hub exports, and reads no metric the hub does not export', async () => {
    const metrics = new HubMetrics({ agentLabels: ['env'], maxLabelValues: 5 });
    metrics.readFrom({ agents: () => [], rollouts: () => ({}), semaphore: () => [], jobRuns: () => ({}), services: () => ({}) });
    const exported = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name);
    const read = dashboard.panels.map((p) => new Set(p.targets.flatMap((t) => metricsOf(t.expr))));
    for (const family of exported.filter((name) => name.startsWith('pushfleet_'))) {
      expect(read.filter((names) => names.has(family)).length, family).toBe(1);
    }
    for (const names of read) for (const name of names) expect(exported, name).toContain(name);
  });
});

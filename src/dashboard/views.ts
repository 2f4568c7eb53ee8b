import { seg, type ApiClient, type Page } from './api.js';
import { actionButton } from './actions.js';
import type { View, ViewContext } from './board.js';
import { h, note, table, type Child, type Column } from './dom.js';
import { duration, gb, pairs, shortSha } from './format.js';
import { code, state, when } from './cells.js';
import { rolloutsView } from './rollouts-view.js';

// The shapes the page reads (src/hub/api/openapi.yaml has the full ones); only the fields shown.
type AgentApp = { app: string; state: string; sha: string | null };
type HostFacts = { hostname: string; os: string; kernel: string; arch: string; cpuLoadPercent: number; memTotalBytes: number; memUsedBytes: number; uptimeSeconds: number };
type Agent = { id: string; online: boolean; version: string | null; labels: Record<string, string>; hostFacts: HostFacts | null; lastHeartbeat: string | null; apps: AgentApp[] };
type AppHost = { agent: string; online: boolean; sha: string | null; state: string; matchesHead: boolean | null; error: string | null };
type AppRow = { app: string; environment: string; repo: string; branch: string | null; head: string | null; hosts: AppHost[] };
type Environment = { name: string; frozen: boolean };
type Delivery = { at: string; delivery: string | null; event: string | null; result: string; status: number; reason: string | null; repo: string | null; ref: string | null; sha: string | null; pusher: string | null };
type PlaybookRun = { runId: string; name: string | null; file: string | null; status: string; error: string | null; requestedAt: string | null; startedAt: string | null; endedAt: string | null; steps: number; stepsDone: number };
type JobRun = { id: string; job: string; executor: string; agent: string | null; status: string; reason: string | null; createdAt: string; startedAt: string | null; endedAt: string | null };
type Placement = { agent: string; generation: number; restarts: number; placedAt: string; runningAt?: string; endedAt?: string; endReason?: string };
type Service = { name: string; action: string; arg: string; status: string; current?: Placement; history: Placement[]; reason?: string };
type AuditEntry = { id: number; at: string; count: number; via: string; who: string | null; identity: string; address: string | null; action: string; target: string | null; outcome: string; reason: string | null };

const more = (page: Page<unknown>): Child => (page.total > page.items.length ? note(`showing ${page.items.length} of ${page.total}`) : null);

const agents: View = {
  section: 'agents',
  areas: ['agents'],
  async load({ api }) {
    const page = await api.get<Page<Agent>>('/agents?limit=500');
    if (page.items.length === 0) return [note('no agent has reported to this hub yet')];
    const online = page.items.filter((a) => a.online).length;
    return [
      h('p', { class: 'summary' }, `${online} of ${page.total} online`),
      table('Agents', [
        { title: 'Agent', cell: (a) => h('strong', {}, a.id) },
        { title: 'State', cell: (a) => state(a.online ? 'online' : 'offline') },
        { title: 'Version', cell: (a) => a.version ?? '—' },
        { title: 'Labels', cell: (a) => pairs(a.labels) },
        { title: 'Host', cell: (a) => hostFacts(a.hostFacts), class: 'wrap' },
        { title: 'Last heartbeat', cell: (a) => when(a.lastHeartbeat) },
        { title: 'Apps', cell: (a) => a.apps.map((x) => h('span', { class: 'chip' }, `${x.app} `, state(x.state), ` ${shortSha(x.sha)}`)) },
      ], page.items),
      more(page),
    ];
  },
};

const apps: View = {
  section: 'apps',
  // Freezing is the rollouts engine's: its notices are 'rollouts'.
  areas: ['apps', 'agents', 'rollouts'],
  async load({ api, operator }) {
    const [page, environments] = await Promise.all([
      api.get<Page<AppRow>>('/apps?limit=500'),
      // Without the rollouts engine there is nothing to freeze: no button then.
      api.get<Page<Environment>>('/environments?limit=1000').catch(() => undefined),
    ]);
    if (page.items.length === 0) return [note('no app is deployed by an agent of this hub yet')];
    const frozenEnvs = new Set(environments?.items.filter((e) => e.frozen).map((e) => e.name));
    const byEnv = new Map<string, AppRow[]>();
    for (const row of page.items) byEnv.set(row.environment, [...(byEnv.get(row.environment) ?? []), row]);
    const out: Child[] = [];
    for (const [env, rows] of byEnv) {
      const frozen = frozenEnvs.has(env);
      const actions = !operator || !environments
        ? null
        : frozen
          ? actionButton('Unfreeze', `Unfreeze environment ${env}?`, () => api.post(`/environments/${seg(env)}/unfreeze`))
          : actionButton('Freeze', `Freeze environment ${env}? No rollout starts in it until it is unfrozen.`, () => api.post(`/environments/${seg(env)}/freeze`), true);
      out.push(
        h('h3', { class: 'env' }, `Environment ${env}`, frozen ? state('frozen') : null, actions),
        table(`Apps in ${env}`, [
          { title: 'App', cell: (r) => h('strong', {}, r.app) },
          { title: 'Repository', cell: (r) => `${r.repo}${r.branch ? ` @ ${r.branch}` : ''}` },
          { title: 'Head', cell: (r) => code(shortSha(r.head), r.head ?? undefined) },
          { title: 'Hosts', cell: (r) => h('ul', { class: 'hosts' }, ...r.hosts.map((host) => hostLine(r, host, operator ? api : undefined))) },
        ], rows),
      );
    }
    out.push(more(page));
    return out;
  },
};

const hostFacts = (f: HostFacts | null): string =>
  f ? `${f.hostname} · ${f.os} ${f.arch} · CPU ${Math.round(f.cpuLoadPercent)}% · memory ${gb(f.memUsedBytes)}/${gb(f.memTotalBytes)} GB · up ${duration(f.uptimeSeconds)}` : '—';

/** An app whose last update failed or was rolled back: the states an operator retries. */
const RETRYABLE = ['failed', 'rolled-back'];

function hostLine(row: AppRow, host: AppHost, api: ApiClient | undefined): HTMLElement {
  return h(
    'li',
    { attrs: { 'data-agent': host.agent } },
    h('span', { class: 'agent' }, host.agent),
    ' ',
    code(shortSha(host.sha), host.sha ?? undefined),
    ' ',
    state(host.state),
    ' ',
    host.online ? null : state('offline'),
    ' ',
    host.matchesHead === null ? h('span', { class: 'muted' }, 'head unknown') : h('span', { class: host.matchesHead ? 'ok' : 'warn' }, host.matchesHead ? 'at head' : 'not at head'),
    host.error ? h('span', { class: 'reason' }, host.error) : null,
    api && RETRYABLE.includes(host.state) ? actionButton('Retry', `Retry ${row.app} on ${host.agent}?`, () => api.post(`/agents/${seg(host.agent)}/apps/${seg(row.app)}/retry`)) : null,
  );
}

/** A section that shows one page of a list: its table, or a line saying the list is empty. */
function listView<T>(spec: { section: string; areas: string[]; path: string; caption: string; empty: string; columns(ctx: ViewContext): Column<T>[] }): View {
  return {
    section: spec.section,
    areas: spec.areas,
    async load(ctx) {
      const page = await ctx.api.get<Page<T>>(spec.path);
      if (page.items.length === 0) return [note(spec.empty)];
      return [table(spec.caption, spec.columns(ctx), page.items), more(page)];
    },
  };
}

const deliveries = listView<Delivery>({
  section: 'deliveries',
  areas: ['deliveries'],
  path: '/deliveries?limit=25',
  caption: 'Webhook deliveries',
  empty: 'no webhook delivery yet',
  columns: () => [
    { title: 'Received', cell: (d) => when(d.at) },
    { title: 'Delivery', cell: (d) => (d.delivery ? code(d.delivery) : '—') },
    { title: 'Event', cell: (d) => d.event ?? '—' },
    { title: 'Push', cell: (d) => (d.repo ? [`${d.repo} ${d.ref ?? ''} `, code(shortSha(d.sha), d.sha ?? undefined), d.pusher ? ` by ${d.pusher}` : null] : '—') },
    { title: 'Result', cell: (d) => [state(d.result), ` ${d.status}`] },
    { title: 'Why', cell: (d) => d.reason ?? '', class: 'wrap' },
  ],
});

const playbooks = listView<PlaybookRun>({
  section: 'playbooks',
  areas: ['playbooks'],
  path: '/playbooks/runs?limit=25',
  caption: 'Playbook runs',
  empty: 'no playbook run yet',
  columns: () => [
    { title: 'Started', cell: (r) => when(r.startedAt ?? r.requestedAt) },
    { title: 'Run', cell: (r) => code(r.runId) },
    { title: 'Playbook', cell: (r) => r.name ?? r.file ?? '—' },
    { title: 'Status', cell: (r) => [state(r.status), ` ${r.stepsDone}/${r.steps} steps`] },
    { title: 'Ended', cell: (r) => when(r.endedAt) },
    { title: 'Why', cell: (r) => r.error ?? '', class: 'wrap' },
  ],
});

const jobs = listView<JobRun>({
  section: 'jobs',
  areas: ['jobs'],
  path: '/jobs/runs?limit=25',
  caption: 'Job runs',
  empty: 'no job run yet',
  columns: () => [
    { title: 'Created', cell: (r) => when(r.createdAt) },
    { title: 'Run', cell: (r) => code(r.id) },
    { title: 'Job', cell: (r) => r.job },
    { title: 'On', cell: (r) => `${r.executor}${r.agent ? `: ${r.agent}` : ''}` },
    { title: 'Status', cell: (r) => state(r.status) },
    { title: 'Ended', cell: (r) => when(r.endedAt) },
    { title: 'Why', cell: (r) => r.reason ?? '', class: 'wrap' },
  ],
});

const services = listView<Service>({
  section: 'services',
  areas: ['services'],
  path: '/services?limit=200',
  caption: 'Services',
  empty: 'no service',
  columns: ({ api, operator }) => [
    { title: 'Service', cell: (s) => h('strong', {}, s.name) },
    { title: 'Action', cell: (s) => `${s.action} ${s.arg}` },
    { title: 'Status', cell: (s) => state(s.status) },
    { title: 'Placed on', cell: (s) => (s.current ? [s.current.agent, ` (generation ${s.current.generation}, ${s.current.restarts} restarts, since `, when(s.current.runningAt ?? s.current.placedAt), ')'] : '—') },
    { title: 'Earlier', cell: (s) => s.history.slice(0, 3).map((p) => h('span', { class: 'chip' }, `${p.agent}: ${p.endReason ?? 'ended'}`)) },
    { title: 'Why', cell: (s) => s.reason ?? '', class: 'wrap' },
    ...(operator ? [{ title: 'Actions', cell: (s: Service) => (s.status === 'cancelled' ? null : actionButton('Cancel', `Cancel service ${s.name}? Its copy is stopped.`, () => api.delete(`/services/${seg(s.name)}`), true)) }] : []),
  ],
});

const audit = listView<AuditEntry>({
  section: 'audit',
  areas: ['audit'],
  path: '/audit?order=newest&limit=50',
  caption: 'Audit log',
  empty: 'nothing recorded yet',
  columns: () => [
    { title: 'When', cell: (e) => [when(e.at), e.count > 1 ? ` (×${e.count})` : null] },
    { title: 'Who', cell: (e) => h('span', { attrs: { title: `known by: ${e.identity}` } }, e.who ?? '—') },
    { title: 'Via', cell: (e) => `${e.via}${e.address ? ` from ${e.address}` : ''}` },
    { title: 'What', cell: (e) => e.action },
    { title: 'On', cell: (e) => e.target ?? '' },
    { title: 'Outcome', cell: (e) => state(e.outcome) },
    { title: 'Why', cell: (e) => e.reason ?? '', class: 'wrap' },
  ],
});

/** Every section, in page order. */
export const VIEWS: readonly View[] = [agents, apps, rolloutsView, deliveries, playbooks, jobs, services, audit];

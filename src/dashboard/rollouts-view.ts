import { seg, type ApiClient, type Page } from './api.js';
import { actionButton } from './actions.js';
import type { View } from './board.js';
import { code, state, when } from './cells.js';
import { h, note, type Child } from './dom.js';
import { shortSha } from './format.js';

type RolloutHost = { agent: string; state: string; canary: boolean; error: string | null; startedAt: string | null; endedAt: string | null; batch?: number | null };
type Rollout = { id: string; app: string; env: string; sha: string; status: string; reason: string | null; pusher?: string; createdAt: string; hosts?: RolloutHost[]; counts?: Record<string, number> };

const ENDED = ['succeeded', 'failed', 'aborted', 'superseded'];
const DONE_HOST = ['succeeded', 'failed', 'timed-out', 'skipped', 'offline', 'rolled-back'];
const FAILED_HOST = ['failed', 'timed-out', 'rolled-back'];
/** Rollouts shown with every host: those still going, and the newest, up to this many. */
const DETAILED = 5;

export const rolloutsView: View = {
  section: 'rollouts',
  areas: ['rollouts'],
  async load({ api, operator }) {
    const page = await api.get<Page<Rollout>>('/rollouts?limit=20');
    if (page.items.length === 0) return [note('no rollout yet')];
    const detailed = page.items.filter((r, i) => i === 0 || !ENDED.includes(r.status)).slice(0, DETAILED);
    const full = await Promise.all(detailed.map((r) => api.get<Rollout>(`/rollouts/${seg(r.id)}`)));
    const byId = new Map(full.map((r) => [r.id, r]));
    return page.items.map((r) => rolloutCard(byId.get(r.id) ?? r, operator ? api : undefined));
  },
};

function rolloutCard(r: Rollout, api: ApiClient | undefined): HTMLElement {
  const counts = r.hosts ? countOf(r.hosts) : (r.counts ?? {});
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const done = Object.entries(counts).reduce((a, [s, n]) => a + (DONE_HOST.includes(s) ? n : 0), 0);
  const summary = Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(' · ') || 'no host yet';
  return h(
    'article',
    { class: 'rollout', attrs: { 'data-rollout': r.id, 'data-status': r.status, 'aria-label': `rollout ${r.id}` } },
    h('header', {}, h('h3', {}, `${r.app} → ${r.env} `, code(shortSha(r.sha), r.sha)), state(r.status), ' ', when(r.createdAt), r.pusher ? ` by ${r.pusher}` : null),
    r.reason ? h('p', { class: 'reason' }, r.reason) : null,
    h('div', { class: 'progress-line' }, h('progress', { attrs: { max: String(Math.max(total, 1)), value: String(done), 'aria-label': `${done} of ${total} hosts done` } }), h('span', { class: 'counts' }, `${done}/${total} done: ${summary}`)),
    api ? actionsOf(r, api) : null,
    r.hosts ? hostsOf(r.hosts) : null,
  );
}

function actionsOf(r: Rollout, api: ApiClient): Child {
  if (ENDED.includes(r.status)) return null;
  const post = (what: string) => () => api.post(`/rollouts/${seg(r.id)}/${what}`);
  return h(
    'div',
    { class: 'actions' },
    r.status === 'paused'
      ? actionButton('Resume', `Resume rollout ${r.id}?`, post('resume'))
      : actionButton('Pause', `Pause rollout ${r.id}? Hosts updating now finish; no other host starts.`, post('pause')),
    actionButton('Abort', `Abort rollout ${r.id}? Hosts not started yet are skipped.`, post('abort'), true),
  );
}

/** The hosts, grouped by batch when the hub says which batch each is in. */
function hostsOf(hosts: RolloutHost[]): HTMLElement {
  const groups = new Map<string, RolloutHost[]>();
  for (const host of hosts) {
    const key = host.canary ? 'canary' : host.batch === undefined || host.batch === null ? 'hosts' : `batch ${host.batch}`;
    groups.set(key, [...(groups.get(key) ?? []), host]);
  }
  return h(
    'div',
    { class: 'batches' },
    ...[...groups].map(([name, members]) =>
      h('div', { class: 'batch' }, h('h4', {}, name), h('ul', { class: 'hosts' }, ...members.map((host) => h('li', { attrs: { 'data-host': host.agent, 'data-state': host.state } }, h('span', { class: 'agent' }, host.agent), ' ', state(host.state), host.endedAt ? [' ', when(host.endedAt)] : null, host.error && FAILED_HOST.includes(host.state) ? h('span', { class: 'reason' }, host.error) : null)))),
    ),
  );
}

function countOf(hosts: RolloutHost[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const host of hosts) counts[host.state] = (counts[host.state] ?? 0) + 1;
  return counts;
}

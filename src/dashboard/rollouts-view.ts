import { seg, type ApiClient, type Page } from './api.js';
import { actionButton } from './actions.js';
import type { View } from './board.js';
import { code, state, when } from './cells.js';
import { h, note, type Child } from './dom.js';
import { shortSha } from './format.js';

type RolloutHost = { agent: string; state: string; canary: boolean; error: string | null; startedAt: string | null; endedAt: string | null };
type Progress = { hosts: number; done: number; succeeded: number; failed: number };
/** The canaries, then the rest as one rolling wave of batchSize hosts at a time. */
type Batch = { name: 'canary' | 'wave'; size: number; done: number };
/** A rollout as the list has it; the detail adds hosts and batches. */
type Rollout = { id: string; app: string; env: string; sha: string; status: string; reason: string | null; pusher: string; createdAt: string; counts: Record<string, number>; progress: Progress; hosts?: RolloutHost[]; batches?: Batch[]; policy?: { batchSize: number } };

const ENDED = ['succeeded', 'failed', 'aborted', 'superseded'];
const FAILED_HOST = ['failed', 'timed-out', 'rolled-back'];
const FAILED_ROLLOUT = ['failed', 'aborted'];
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
  const { hosts: total, done } = r.progress;
  const summary = Object.entries(r.counts).map(([s, n]) => `${n} ${s}`).join(' · ') || 'no host yet';
  return h(
    'article',
    { class: 'rollout', attrs: { 'data-rollout': r.id, 'data-status': r.status, 'aria-label': `rollout ${r.id}` } },
    h('header', {}, h('h3', {}, `${r.app} → ${r.env} `, code(shortSha(r.sha), r.sha)), state(r.status), ' ', when(r.createdAt), ` by ${r.pusher}`),
    r.reason ? h('p', { class: FAILED_ROLLOUT.includes(r.status) ? 'reason' : 'muted' }, r.reason) : null,
    h('div', { class: 'progress-line' }, h('progress', { attrs: { max: String(Math.max(total, 1)), value: String(done), 'aria-label': `${done} of ${total} hosts done` } }), h('span', { class: 'counts' }, `${done}/${total} done: ${summary}`)),
    api ? actionsOf(r, api) : null,
    r.hosts ? hostsOf(r.hosts, r.batches ?? [], r.policy?.batchSize) : null,
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

/** Each batch (canaries, then the wave) with its hosts: state, when it finished, and why it failed. */
function hostsOf(hosts: RolloutHost[], batches: Batch[], batchSize: number | undefined): HTMLElement {
  return h(
    'div',
    { class: 'batches' },
    batches.map((batch) => {
      const members = hosts.filter((host) => host.canary === (batch.name === 'canary'));
      const title = batch.name === 'canary' ? 'Canary' : `Wave${batchSize ? ` (${batchSize} at a time)` : ''}`;
      return h('div', { class: 'batch' }, h('h4', {}, `${title}: ${batch.done}/${batch.size} done`), h('ul', { class: 'hosts' }, members.map(hostLine)));
    }),
  );
}

const hostLine = (host: RolloutHost): HTMLElement =>
  h('li', { attrs: { 'data-host': host.agent, 'data-state': host.state } }, h('span', { class: 'agent' }, host.agent), ' ', state(host.state), host.endedAt ? [' ', when(host.endedAt)] : null, host.error && FAILED_HOST.includes(host.state) ? h('span', { class: 'reason' }, host.error) : null);

import type { Paged, PlacementView, ServerView, ServiceView } from '../shared/contract/services-engine-messages.js';
import { formatTable } from './text-table.js';

// What `pushfleet services …` prints: the engine's views as text, plain functions of them.

const when = (iso: string | undefined): string => (iso === undefined ? '-' : iso.replace(/\.\d{3}Z$/, 'Z'));
const labels = (l: Record<string, string>): string => Object.entries(l).map(([k, v]) => `${k}=${v}`).join(',') || '-';

/** `services ls`: one row a service. */
export function servicesTable(page: Paged<ServiceView>, width?: number): string {
  if (page.total === 0) return 'no services (pushfleet services add <name> --action <action> creates one)\n';
  const rows = page.items.map((s) => [s.name, s.status, String(s.generation), s.current?.agent ?? '-', s.action, s.reason ?? '']);
  return formatTable(['NAME', 'STATUS', 'GEN', 'AGENT', 'ACTION', 'REASON'], rows, width) + pageNote(page, 'services');
}

/** `services servers`: one row an agent offering services, with its capacity. */
export function serversTable(page: Paged<ServerView>, width?: number): string {
  if (page.total === 0) return "no agent offers services yet (an agent's config needs a services: section)\n";
  const rows = page.items.map((s) => [s.agent, s.online ? 'online' : 'offline', `${s.used}/${s.maxWorkers}`, s.actions.join(',') || '-', labels(s.labels), s.services.join(',') || '-']);
  return formatTable(['AGENT', 'STATE', 'USED', 'ACTIONS', 'LABELS', 'SERVICES'], rows, width) + pageNote(page, 'servers');
}

/** Where a page sits in the whole list, and the flag for the next one (nothing when it is all). */
export function pageNote({ items, total, offset }: Paged<unknown>, what: string): string {
  if (offset === 0 && items.length === total) return '';
  const next = offset + items.length;
  const range = items.length ? `${offset + 1}-${next}` : 'none';
  return `(${range} of ${total} ${what}${next < total ? `; --offset ${next} for more` : ''})\n`;
}

/** `services show`: the service, then its placements, the current one first. */
export function serviceText(s: ServiceView, width?: number): string {
  const lines: [string, string][] = [
    ['service', s.name],
    ['status', s.status + (s.reason ? `: ${s.reason}` : '')],
    ['action', s.action],
    ['arg', s.arg === '' ? '-' : JSON.stringify(s.arg)],
    ['selector', labels(s.selector)],
    ['generation', String(s.generation)],
    ['created', when(s.createdAt)],
    ['placed on', s.current ? `${s.current.agent} (generation ${s.current.generation}, ${s.current.restarts} restarts)` : '-'],
  ];
  const head = lines.map(([k, v]) => `${k.padEnd(10)} ${v}`).join('\n') + '\n';
  const placements: [PlacementView, string][] = [...(s.current ? [[s.current, 'current'] as [PlacementView, string]] : []), ...s.history.map((p): [PlacementView, string] => [p, p.endReason ?? ''])];
  if (!placements.length) return `${head}\nno placement yet\n`;
  const rows = placements.map(([p, end]) => [String(p.generation), p.agent, String(p.restarts), when(p.placedAt), when(p.runningAt), when(p.endedAt), end]);
  return `${head}\nplacements (newest first):\n${formatTable(['GEN', 'AGENT', 'RESTARTS', 'PLACED', 'RUNNING', 'ENDED', 'END'], rows, width)}`;
}

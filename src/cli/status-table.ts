import type { FleetSnapshot } from '../shared/fleet.js';
import type { AppState } from '../shared/messages.js';
import { formatTable } from './text-table.js';

/** `width`: the terminal's columns to fit (unset: no limit); `wide`: whole SHAs too. */
export type StatusTableOptions = { width?: number; wide?: boolean };

function age(iso: string | undefined, now: Date): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

const IN_PROGRESS: AppState['state'][] = ['waiting', 'updating', 'retrying'];

/** The state, with when a retry comes and whether an interrupted update was redone or rolled back. */
function stateText(app: AppState, now: Date): string {
  const parts: string[] = [app.state];
  if (app.state === 'retrying' && app.retrying) parts.push(`(try ${app.retrying.attempt} in ${Math.max(0, Math.round((Date.parse(app.retrying.nextAt) - now.getTime()) / 1000))}s)`);
  if (app.interrupted) parts.push(`(interrupted at ${app.interrupted.step}, ${app.interrupted.action === 'redo' ? 'redone' : 'rolled back'})`);
  return parts.join(' ');
}

/** Whole, whatever its length: formatTable wraps it rather than cut the reason. */
function problem(app: AppState): string {
  if (app.lastError) return `${app.lastError.step}: ${app.lastError.message}`;
  return app.refusedHead ? `refused head: ${app.refusedHead.reason}` : '';
}

/** Renders agents × apps as an aligned text table, one row per app (or per app-less agent). */
export function renderStatusTable(snapshot: FleetSnapshot, now = new Date(), options: StatusTableOptions = {}): string {
  const short = (sha: string | null) => (sha ? (options.wide ? sha : sha.slice(0, 8)) : '-');
  const header = ['AGENT', 'STATUS', 'LOAD', 'MEM', 'APP', 'REF', 'SHA', 'STATE', 'UPDATED', 'ERROR'];
  const rows: string[][] = [];
  for (const [id, agent] of [...snapshot.agents].sort(([a], [b]) => a.localeCompare(b))) {
    const host = agent.heartbeat?.host;
    const load = host ? `${host.cpuLoadPercent}%` : '-';
    const mem = host ? `${Math.round((host.memUsedBytes / host.memTotalBytes) * 100)}%` : '-';
    const base = [id, agent.status?.state ?? '?', load, mem];
    const apps = [...agent.apps.values()].sort((a, b) => a.app.localeCompare(b.app));
    if (apps.length === 0) rows.push([...base, '-', '-', '-', '-', '-', '']);
    for (const app of apps) {
      const target = IN_PROGRESS.includes(app.state) ? `→${short(app.targetSha)}` : '';
      rows.push([...base, app.app, app.ref?.replace(/^refs\/(heads|tags)\//, '') ?? '-', short(app.sha) + target, stateText(app, now), age(app.updatedAt, now), problem(app)]);
    }
  }
  if (rows.length === 0) return 'no agents have reported to this broker\n';
  return formatTable(header, rows, options.wide ? undefined : options.width);
}

import { describe, expect, it } from 'vitest';
import { describeApp, type RunnerView } from '../../agent/app-state.js';
import { AppConfig } from '../../agent/config.js';
import { emptyJournal, type Journal } from '../../agent/journal.js';
import { tableWidth } from '../../src/cli/status-command.js';
import { statusDocument } from '../../src/cli/status-document.js';
import { renderStatusTable } from '../../src/cli/status-table.js';
import { formatTable } from '../../src/cli/text-table.js';
import { emptySnapshot, type FleetSnapshot } from '../../src/shared/fleet.js';

const OLD = 'a'.repeat(40);
const NEW = 'b'.repeat(40);
const NOW = Date.parse('2026-01-01T00:01:00Z');
const HEALTH = 'health: GET http://127.0.0.1:41234/healthz did not answer 2xx within 30 s: the last answer was HTTP 404';
const view: RunnerView = { admitting: null, pinnedSha: null, journalError: null, refusedHead: null, retryRequest: null };

function fleet(): FleetSnapshot {
  const app = AppConfig.parse({ name: 'web', repo: 'acme/web', branch: 'release/2026-q1', path: '/srv/web', restart: ['true'] });
  const journal: Journal = {
    ...emptyJournal('web', '/srv/web', null),
    deployed: { sha: OLD, ref: 'refs/heads/release/2026-q1', at: 0 },
    last: { state: 'rolled-back', target: { sha: NEW, ref: 'refs/heads/release/2026-q1', deliveryId: 'd1', receivedAt: '2026-01-01T00:00:00.000Z', direct: false, key: 'd1' }, error: { step: 'health', message: HEALTH.slice('health: '.length), outputTail: '' }, interrupted: null, durations: {}, at: NOW },
  };
  const snap = emptySnapshot();
  snap.agents.set('db-primary-eu-west-7', { apps: new Map([['web', describeApp(app, 'db-primary-eu-west-7', { updates: 0, health: true }, journal, view, NOW)]]) });
  return snap;
}

/** The ERROR column's text of a rendered table, its continuation lines joined back (blanks dropped: a wrap may break at one). */
function errorText(table: string): string {
  const lines = table.trimEnd().split('\n');
  const start = lines[0]!.indexOf('ERROR');
  for (const line of lines.slice(2)) expect(line.slice(0, start).trim(), 'continuation lines hold nothing but the error').toBe('');
  return lines
    .slice(1)
    .map((l) => l.slice(start))
    .join('')
    .replace(/\s/g, '');
}

describe('status table', () => {
  it('at 80 columns fits every line, cuts other cells with "…" and puts the whole error on its own lines', () => {
    const table = renderStatusTable(fleet(), new Date(NOW), { width: 80 });
    expect(table.split('\n')).toEqual([
      'AGENT     STATUS  LOAD  MEM  APP  REF        SHA       STATE      UPDATED  ERROR',
      'db-prim…  ?       -     -    web  release/…  aaaaaaaa  rolled-b…  0s ago',
      '    health: GET http://127.0.0.1:41234/healthz did not answer 2xx within 30 s:',
      '    the last answer was HTTP 404',
      '',
    ]);
  });

  it('at 120 columns wraps the error within its column, losing nothing', () => {
    const table = renderStatusTable(fleet(), new Date(NOW), { width: 120 });
    for (const line of table.trimEnd().split('\n')) expect(line.length, line).toBeLessThanOrEqual(120);
    expect(errorText(table)).toBe(HEALTH.replace(/\s/g, ''));
    expect(table).toMatch(/ 404\n$/);
  });

  it('at 200 columns is one line per app, nothing cut', () => {
    const table = renderStatusTable(fleet(), new Date(NOW), { width: 200 });
    const [header, row, ...more] = table.trimEnd().split('\n');
    expect(more).toEqual([]);
    expect(header).toMatch(/^AGENT\s+STATUS\s+LOAD\s+MEM\s+APP\s+REF\s+SHA\s+STATE\s+UPDATED\s+ERROR$/);
    expect(row).toMatch(new RegExp(`^db-primary-eu-west-7\\s+\\?\\s+-\\s+-\\s+web\\s+release/2026-q1\\s+aaaaaaaa\\s+rolled-back\\s+0s ago\\s+${HEALTH.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`));
    expect(table).not.toContain('…');
  });

  it('wide ignores the width and shows whole SHAs', () => {
    const table = renderStatusTable(fleet(), new Date(NOW), { width: 80, wide: true });
    expect(table.trimEnd().split('\n')).toHaveLength(2);
    expect(table).toContain(OLD);
    expect(table).toContain(HEALTH);
  });

  it('cuts nothing when the table fits, and wraps a long last cell at a space', () => {
    expect(formatTable(['A', 'B'], [['x', 'y']], 80)).toBe('A  B\nx  y\n');
    expect(formatTable(['NAME', 'ERROR'], [['n', 'one two three four five six seven eight nine ten eleven twelve thirteen']], 40)).toBe(
      'NAME  ERROR\nn     one two three four five six seven\n      eight nine ten eleven twelve\n      thirteen\n',
    );
  });
});

describe('status width and JSON', () => {
  it('fits COLUMNS when set, else the terminal, and nothing when piped', () => {
    expect(tableWidth({ COLUMNS: '120' }, { isTTY: false })).toBe(120);
    expect(tableWidth({ COLUMNS: '120' }, { isTTY: true, columns: 80 })).toBe(120);
    expect(tableWidth({}, { isTTY: true, columns: 80 })).toBe(80);
    expect(tableWidth({ COLUMNS: 'wide' }, { isTTY: false })).toBeUndefined();
    expect(tableWidth({}, { isTTY: false })).toBeUndefined();
  });

  it('--json is one versioned document with the hub, and every agent and app whole', () => {
    const doc = statusDocument(fleet(), undefined);
    expect(doc).toMatchObject({ v: 1, hub: null, agents: { 'db-primary-eu-west-7': { status: null, heartbeat: null, apps: { web: { sha: OLD, lastError: { step: 'health' } } } } } });
    expect(JSON.parse(JSON.stringify(doc)).agents['db-primary-eu-west-7'].apps.web.lastError.message).toBe(HEALTH.slice('health: '.length));
  });
});

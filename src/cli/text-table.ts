const GAP = 2;
/** The last column (the reason something failed) keeps at least this many characters per line before others are cut. */
const LAST_MIN = 30;
/** No other column is cut below this (or its header). */
const CELL_MIN = 8;
/** Where a last cell too long for a narrow last column goes: on its own lines under the row. */
const BELOW = '    ';

/**
 * Aligned plain-text columns, two spaces apart, with trailing blanks trimmed. With `width` (a
 * terminal's columns) and a table wider than that, the other columns are cut with "…" (widest
 * first, only as far as needed) and the last column is never cut: a long cell wraps within its
 * column, or, where fewer than LAST_MIN columns are left for it, goes whole on indented lines below
 * its row, so what it says (an HTTP status at the end of an error) is never lost.
 */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], width?: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  if (width !== undefined) fit(widths, header, width);
  const last = widths.length - 1;
  const start = widths.slice(0, last).reduce((sum, w) => sum + w + GAP, 0);
  const below = width !== undefined && widths[last]! < LAST_MIN;
  const line = (cells: readonly string[]) => {
    const text = cells[last] ?? '';
    const inColumn = !below || text.length <= widths[last]!;
    const [first, ...more] = inColumn ? wrap(text, widths[last]!) : ['', ...wrap(text, width! - BELOW.length)];
    const head = cells
      .slice(0, last)
      .map((c, i) => cut(c, widths[i]!).padEnd(widths[i]!))
      .concat(first!)
      .join(' '.repeat(GAP));
    const pad = inColumn ? ' '.repeat(start) : BELOW;
    return [head, ...more.map((m) => pad + m)].map((l) => l.trimEnd()).join('\n');
  };
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** Narrows `widths` in place to fit `width`: the widest other column first, the last one given what is left. */
function fit(widths: number[], header: readonly string[], width: number): void {
  const last = widths.length - 1;
  const lastNatural = widths[last]!;
  // Room for the last column to wrap within; failing that, only for its header (its cells go below).
  const room = narrowed(widths, header, width - Math.min(lastNatural, LAST_MIN)) ?? narrowed(widths, header, width - header[last]!.length);
  if (room) widths.splice(0, last, ...room);
  else widths.splice(0, last, ...widths.slice(0, last).map((w, i) => Math.min(w, Math.max(CELL_MIN, header[i]!.length))));
  const others = widths.slice(0, last).reduce((sum, w) => sum + w + GAP, 0);
  widths[last] = Math.max(header[last]!.length, Math.min(lastNatural, width - others));
}

/** The other columns' widths, widest cut first, so that they and their gaps take at most `budget`; undefined if they cannot. */
function narrowed(widths: readonly number[], header: readonly string[], budget: number): number[] | undefined {
  const w = widths.slice(0, -1);
  const floor = (i: number) => Math.max(CELL_MIN, header[i]!.length);
  const total = () => w.reduce((sum, x) => sum + x + GAP, 0);
  while (total() > budget) {
    let widest = -1;
    for (let i = 0; i < w.length; i++) if (w[i]! > floor(i) && (widest < 0 || w[i]! > w[widest]!)) widest = i;
    if (widest < 0) return undefined;
    w[widest]!--;
  }
  return w;
}

function cut(cell: string, width: number): string {
  return cell.length <= width ? cell : `${cell.slice(0, width - 1)}…`;
}

/** Lines of at most `width` characters, broken after a space where one is near, else mid-word. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let rest = text;
  while (rest.length > width) {
    const space = rest.lastIndexOf(' ', width);
    const at = space > width / 2 ? space + 1 : width;
    lines.push(rest.slice(0, at).trimEnd());
    rest = rest.slice(at);
  }
  lines.push(rest);
  return lines;
}

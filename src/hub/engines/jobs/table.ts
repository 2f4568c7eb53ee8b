import { parse as parseCsv } from 'csv-parse/sync';
import { isSeq, LineCounter, parse as parseYamlValue, parseDocument } from 'yaml';
import { firstLine } from '../../../shared/startup.js';
import { JOB_NAME, type JobRow, type RowError, type TableText } from './model.js';
import { STRUCTURED_COLUMNS, validateRow } from './row-schema.js';
import { cycleReasons } from './table-cycles.js';

/**
 * The jobs table's text → its rows and the reasons for every row refused (pure). A row is
 * refused alone; only a table that cannot be read as a whole (broken quoting, bad YAML, no
 * job_name column) is a TableError, so the caller keeps the rows it had.
 */

export class TableError extends Error {
  override name = 'TableError';
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(line === undefined ? message : `line ${line}: ${message}`);
  }
}

export type ParsedTable = { rows: JobRow[]; errors: RowError[] };

export type TableOptions = {
  /** `engines.jobs.prefix`: completions are `{prefix}/job_complete/{job}` and `{prefix}/job_failed/{job}`. */
  prefix: string;
  /** The caller's own check of a valid row (the engine: its filter overlaps pushfleet's topics); a reason refuses it. */
  refuse?: (row: JobRow) => string | undefined;
};

/** A row as read, before validation: its keys with empty values left out, or why it could not be read. */
type ReadRow = { line: number; fields: Record<string, unknown> } | { line: number; jobName?: string; reason: string };

export function parseTable(text: string, format: TableText['format'], options: TableOptions): ParsedTable {
  const records = format === 'csv' ? csvRecords(text) : yamlRecords(text);
  const errors: RowError[] = [];
  const valid: JobRow[] = [];
  const firstLine = new Map<string, number>();
  for (const record of records) {
    if ('reason' in record) {
      errors.push(record);
      continue;
    }
    const { fields, line } = record;
    const name = typeof fields.job_name === 'string' || typeof fields.job_name === 'number' ? String(fields.job_name).trim() : undefined;
    // Names are claimed before anything else is checked: the later row is the duplicate, whatever else is wrong with either.
    if (name !== undefined && JOB_NAME.test(name)) {
      const first = firstLine.get(name);
      if (first !== undefined) {
        errors.push({ line, jobName: name, reason: `duplicate job_name (first on line ${first})` });
        continue;
      }
      firstLine.set(name, line);
    }
    const result = validateRow(fields, line);
    const reason = 'reason' in result ? result.reason : options.refuse?.(result.row);
    if (reason !== undefined) errors.push({ line, ...(name !== undefined && name !== '' && { jobName: name.slice(0, 80) }), reason });
    else if ('row' in result) valid.push(result.row);
  }
  const cycles = cycleReasons(valid, options.prefix);
  for (const row of valid) {
    const reason = cycles.get(row.jobName);
    if (reason !== undefined) errors.push({ line: row.line, jobName: row.jobName, reason });
  }
  return { rows: valid.filter((r) => !cycles.has(r.jobName)), errors: errors.sort((a, b) => a.line - b.line) };
}

function csvRecords(text: string): ReadRow[] {
  // Byte offsets (csv-parse counts bytes) give each record's first line, multi-line quoted fields and CRLF included.
  const bytes = Buffer.from(text, 'utf8');
  let parsed: { record: string[]; info: { bytes: number } }[];
  try {
    parsed = parseCsv(bytes, { bom: true, info: true, skip_empty_lines: true, trim: true, relax_column_count: true, relax_quotes: true }) as unknown as typeof parsed;
  } catch (err) {
    // csv-parse names the line where the text ended; the field left open began earlier.
    if ((err as { code?: string }).code === 'CSV_QUOTE_NOT_CLOSED') throw new TableError('not valid CSV: this quoted field is never closed', openQuoteLine(text));
    throw new TableError(`not valid CSV: ${firstLine(err)}`, (err as { lines?: number }).lines);
  }
  let offset = 0;
  let line = 1;
  const startLine = (end: number): number => {
    // Blank lines before the record belong to no record.
    while (offset < end && [0x0a, 0x0d, 0x20, 0x09].includes(bytes[offset]!)) if (bytes[offset++] === 0x0a) line++;
    const first = line;
    for (; offset < end; offset++) if (bytes[offset] === 0x0a) line++;
    return first;
  };
  const rows = parsed.map(({ record, info }) => ({ record, line: startLine(info.bytes) })).filter((r) => r.record.some((cell) => cell !== ''));
  const header = rows.shift();
  if (!header) return [];
  const columns = header.record.map((c) => c.toLowerCase());
  const twice = columns.find((c, i) => columns.indexOf(c) !== i);
  if (twice !== undefined) throw new TableError(`column "${twice}" appears twice in the header`, header.line);
  for (const required of ['job_name', 'mqtt_topic']) if (!columns.includes(required)) throw new TableError(`the header has no ${required} column (it reads: ${columns.join(',').slice(0, 200)})`, header.line);
  return rows.map(({ record, line }) => csvRow(columns, record, line));
}

/** The line of the last quote that opened a quoted field (`""` inside one closes and reopens it). */
function openQuoteLine(text: string): number {
  let line = 1;
  let opened = 1;
  let quoted = false;
  for (const ch of text) {
    if (ch === '\n') line++;
    else if (ch === '"') {
      quoted = !quoted;
      if (quoted) opened = line;
    }
  }
  return opened;
}

function csvRow(columns: string[], cells: string[], line: number): ReadRow {
  const name = cells[columns.indexOf('job_name')] || undefined;
  const extra = cells.slice(columns.length);
  if (cells.length < columns.length || extra.some((c) => c !== '')) return { line, ...(name && { jobName: name.slice(0, 80) }), reason: `has ${cells.length} fields, the header ${columns.length}` };
  const fields: Record<string, unknown> = {};
  for (const [i, column] of columns.entries()) {
    const cell = cells[i]!;
    if (cell === '') continue;
    if (!STRUCTURED_COLUMNS.has(column)) {
      fields[column] = cell;
      continue;
    }
    try {
      fields[column] = parseYamlValue(cell);
    } catch (err) {
      return { line, ...(name && { jobName: name.slice(0, 80) }), reason: `${column}: not a list or map in YAML flow or JSON form (${firstLine(err)})` };
    }
  }
  return { line, fields };
}

function yamlRecords(text: string): ReadRow[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const bad = doc.errors[0];
  if (bad) throw new TableError(`not valid YAML: ${firstLine(bad)}`, lineCounter.linePos(bad.pos[0]).line);
  if (doc.contents === null) return [];
  if (!isSeq(doc.contents)) throw new TableError('a YAML jobs table is a list of rows (- job_name: …)', lineCounter.linePos(doc.contents.range?.[0] ?? 0).line);
  let values: unknown[];
  try {
    values = doc.toJS({ maxAliasCount: 100 }) as unknown[];
  } catch (err) {
    throw new TableError(`not valid YAML: ${firstLine(err)}`);
  }
  return doc.contents.items.map((item, i): ReadRow => {
    const line = lineCounter.linePos((item as { range?: readonly number[] | null }).range?.[0] ?? 0).line;
    const value = values[i];
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { line, reason: 'a row is a map of keys (job_name, mqtt_topic, …) to values' };
    const fields = Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null && v !== undefined && v !== ''));
    return { line, fields };
  });
}


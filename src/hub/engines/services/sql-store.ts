import { z } from 'zod';
import { placementsOf, type Placement, type Service, type ServiceStatus } from './model.js';

/**
 * The services store in SQL for any driver (SQLite, PostgreSQL): one schema, and each operation
 * as a generator of statements that its driver runs inside one transaction, feeding back each
 * outcome. The steps hold the rules (fencing, bounded history, idempotent create); a driver only
 * runs statements, so the two stores cannot drift apart.
 */

/** Plain SQL both dialects read alike: BIGINT is an INTEGER to SQLite, JSON is kept as TEXT. */
export const SCHEMA: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS services (
    name TEXT PRIMARY KEY, action TEXT NOT NULL, arg TEXT, selector TEXT NOT NULL,
    created_at BIGINT NOT NULL, seq BIGINT NOT NULL, status TEXT NOT NULL,
    generation BIGINT NOT NULL CHECK (generation >= 0), current TEXT,
    generation_agent TEXT NOT NULL DEFAULT '')`,
  // generation_agent: the agent given the placement of \`generation\` ('' before any): one generation, one agent.
  'CREATE INDEX IF NOT EXISTS services_by_seq ON services (seq)',
  `CREATE TABLE IF NOT EXISTS service_placements (
    service TEXT NOT NULL, generation BIGINT NOT NULL, agent TEXT NOT NULL, placed_at BIGINT NOT NULL,
    running_at BIGINT, ended_at BIGINT, end_reason TEXT, restarts INTEGER NOT NULL,
    stop_timeout_ms BIGINT NOT NULL, exits TEXT NOT NULL, safe_at BIGINT,
    PRIMARY KEY (service, generation))`,
  // safe_at: an ended copy that may still run until then (unconfirmed stop): the fence survives a hub restart.
  // The highest generation a removed service had: one created again under its name starts above
  // it, so an agent that saw the old copy's generation does not refuse the new one as stale.
  'CREATE TABLE IF NOT EXISTS service_fences (name TEXT PRIMARY KEY, generation BIGINT NOT NULL)',
];

/** Placement history entries kept per service, newest first, unless the store is told otherwise. */
export const DEFAULT_HISTORY = 20;

export type SqlValue = string | number | null;
/** `?` placeholders, in order. */
export type Statement = { sql: string; args: readonly SqlValue[] };
/** Rows as the driver returns them (PostgreSQL gives BIGINT as a string). */
export type Outcome = { changes: number; rows: Record<string, unknown>[] };
export type Steps<T> = Generator<Statement, T, Outcome>;

/** A refusal by the store's own rules, the same from every driver. */
export class ServiceStoreError extends Error {
  override name = 'ServiceStoreError';
}

export class ServiceExistsError extends ServiceStoreError {
  constructor(readonly service: string) {
    super(`a service named ${service} exists already; remove it first or choose another name`);
  }
}

export class ServiceMissingError extends ServiceStoreError {
  constructor(readonly service: string) {
    super(`no service named ${service}`);
  }
}

/** Fencing: a generation already given to one agent cannot be given to another (two hubs placing at once). */
export class GenerationTakenError extends ServiceStoreError {
  constructor(
    readonly service: string,
    readonly generation: number,
    readonly agent: string,
  ) {
    super(`service ${service}: generation ${generation} is placed on ${agent || 'no agent'} already; a new placement needs a higher generation`);
  }
}

/** Fencing: a writer holding an older generation (a stale hub, a late retry) may not undo a newer placement. */
export class StaleGenerationError extends ServiceStoreError {
  constructor(
    readonly service: string,
    readonly generation: number,
    readonly stored: number,
  ) {
    super(`service ${service}: refused to save generation ${generation} over the stored generation ${stored}`);
  }
}

const sql = (text: string, ...args: SqlValue[]): Statement => ({ sql: text, args });

export function* schemaSteps(): Steps<void> {
  for (const ddl of SCHEMA) yield sql(ddl);
}

export function* loadSteps(): Steps<Service[]> {
  const { rows } = yield sql('SELECT * FROM services ORDER BY seq, name');
  const placements = (yield sql('SELECT * FROM service_placements ORDER BY service, generation DESC')).rows;
  const history = new Map<string, Placement[]>();
  for (const row of placements) {
    const name = String(row.service);
    history.set(name, [...(history.get(name) ?? []), toPlacement(row)]);
  }
  return rows.map((row) => toService(row, history.get(String(row.name)) ?? []));
}

/**
 * Inserts the service unless its name is taken. A create retried after its first attempt did
 * commit (a reply lost with the connection) finds its own row and returns it instead of failing.
 * Returns the service as stored: its generation lifted above any earlier service of that name.
 */
export function* createSteps(service: Service, historyLimit: number): Steps<Service> {
  check(service);
  const fence = (yield sql('SELECT generation FROM service_fences WHERE name = ?', service.name)).rows[0];
  const stored: Service = { ...service, generation: Math.max(service.generation, fence ? Number(fence.generation) : 0) };
  const c = columns(stored);
  const inserted = yield sql(
    'INSERT INTO services (name, action, arg, selector, created_at, seq, status, generation, current, generation_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING',
    c.name, c.action, c.arg, c.selector, c.createdAt, c.seq, c.status, c.generation, c.current, c.generationAgent,
  );
  if (inserted.changes === 0) {
    const existing = yield* oneSteps(service.name);
    if (existing && sameCreation(existing, service)) return existing;
    throw new ServiceExistsError(service.name);
  }
  yield* historySteps(stored, historyLimit);
  return { ...stored, history: bounded(stored.history, historyLimit) };
}

/**
 * Writes the service whole. Refused if the stored generation is higher, or equal but placed on
 * another agent: the same generation carries only newer state of the same placement. A save
 * naming no placement of its generation keeps the agent stored (it can start no copy).
 */
export function* saveSteps(service: Service, historyLimit: number): Steps<void> {
  check(service);
  const c = columns(service);
  const updated = yield sql(
    `UPDATE services SET action = ?, arg = ?, selector = ?, created_at = ?, seq = ?, status = ?, generation = ?, current = ?,
      generation_agent = CASE WHEN generation = ? AND ? = '' THEN generation_agent ELSE ? END
      WHERE name = ? AND (generation < ? OR (generation = ? AND (generation_agent = ? OR ? = '')))`,
    c.action, c.arg, c.selector, c.createdAt, c.seq, c.status, c.generation, c.current, c.generation, c.generationAgent, c.generationAgent,
    c.name, c.generation, c.generation, c.generationAgent, c.generationAgent,
  );
  if (updated.changes === 0) {
    const row = (yield sql('SELECT generation, generation_agent FROM services WHERE name = ?', service.name)).rows[0];
    if (!row) throw new ServiceMissingError(service.name);
    if (Number(row.generation) > service.generation) throw new StaleGenerationError(service.name, service.generation, Number(row.generation));
    throw new GenerationTakenError(service.name, service.generation, String(row.generation_agent));
  }
  yield* historySteps(service, historyLimit);
}

/** Forgets the service and its history, keeping its generation as the fence for its name; nothing to do if it is gone. */
export function* removeSteps(name: string): Steps<void> {
  // RETURNING: the generation deleted, not one read before a concurrent save raised it.
  const gone = (yield sql('DELETE FROM services WHERE name = ? RETURNING generation', name)).rows[0];
  if (!gone) return;
  yield sql(
    `INSERT INTO service_fences (name, generation) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET generation =
      CASE WHEN excluded.generation > service_fences.generation THEN excluded.generation ELSE service_fences.generation END`,
    name, Number(gone.generation),
  );
  yield sql('DELETE FROM service_placements WHERE service = ?', name);
}

function* oneSteps(name: string): Steps<Service | undefined> {
  const row = (yield sql('SELECT * FROM services WHERE name = ?', name)).rows[0];
  if (!row) return undefined;
  const history = (yield sql('SELECT * FROM service_placements WHERE service = ? ORDER BY generation DESC', name)).rows;
  return toService(row, history.map(toPlacement));
}

function* historySteps(service: Service, historyLimit: number): Steps<void> {
  yield sql('DELETE FROM service_placements WHERE service = ?', service.name);
  const kept = bounded(service.history, historyLimit);
  if (kept.length === 0) return;
  // One statement for all rows: a round trip each would dominate a save over the network.
  yield sql(
    `INSERT INTO service_placements (service, generation, agent, placed_at, running_at, ended_at, end_reason, restarts, stop_timeout_ms, exits, safe_at) VALUES ${kept.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
    ...kept.flatMap((p) => [service.name, p.generation, p.agent, p.placedAt, p.runningAt ?? null, p.endedAt ?? null, p.endReason ?? null, p.restarts, p.stopTimeoutMs, JSON.stringify(p.exits), p.safeAt ?? null]),
  );
}

/** Newest first (by generation), at most `limit`. */
const bounded = (history: readonly Placement[], limit: number): Placement[] => [...history].sort((a, b) => b.generation - a.generation).slice(0, limit);

/** What the engine must never hand over: a placement above the service's generation, or two placements sharing one. */
function check(service: Service): void {
  const generations = placementsOf(service).map((p) => p.generation);
  const above = generations.find((g) => g > service.generation);
  if (above !== undefined) throw new ServiceStoreError(`service ${service.name}: a placement has generation ${above}, above the service's ${service.generation}`);
  if (new Set(generations).size !== generations.length) throw new ServiceStoreError(`service ${service.name}: two placements share a generation`);
}

const sameCreation = (a: Service, b: Service): boolean =>
  a.action === b.action && a.arg === b.arg && a.createdAt === b.createdAt && a.seq === b.seq && canonical(a.selector) === canonical(b.selector);

const canonical = (selector: Record<string, string>): string => JSON.stringify(Object.entries(selector).sort(([a], [b]) => (a < b ? -1 : 1)));

function columns(s: Service) {
  return {
    name: s.name,
    action: s.action,
    arg: s.arg ?? null,
    selector: JSON.stringify(s.selector),
    createdAt: s.createdAt,
    seq: s.seq,
    status: s.status,
    generation: s.generation,
    current: s.current ? JSON.stringify(s.current) : null,
    generationAgent: placementsOf(s).find((p) => p.generation === s.generation)?.agent ?? '',
  };
}

const PlacementJson = z.object({
  agent: z.string(),
  generation: z.number().int().nonnegative(),
  placedAt: z.number(),
  runningAt: z.number().optional(),
  endedAt: z.number().optional(),
  endReason: z.string().optional(),
  restarts: z.number().int().nonnegative(),
  stopTimeoutMs: z.number().int().nonnegative(),
  exits: z.array(z.number()),
  safeAt: z.number().optional(),
});
const ExitsJson = z.array(z.number());
const SelectorJson = z.record(z.string(), z.string());

/** Rows are read back through zod: a row edited by hand fails with its service named, not later in the engine. */
function parseJson<T>(schema: z.ZodType<T>, text: unknown, what: string): T {
  const parsed = schema.safeParse(JSON.parse(String(text)));
  if (!parsed.success) throw new ServiceStoreError(`the stored ${what} is malformed: ${z.prettifyError(parsed.error).split('\n').join('; ')}`);
  return parsed.data;
}

const optional = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));

function toPlacement(row: Record<string, unknown>): Placement {
  const p: Placement = {
    agent: String(row.agent),
    generation: Number(row.generation),
    placedAt: Number(row.placed_at),
    restarts: Number(row.restarts),
    stopTimeoutMs: Number(row.stop_timeout_ms),
    exits: parseJson(ExitsJson, row.exits, `exits of service ${String(row.service)} generation ${String(row.generation)}`),
  };
  const runningAt = optional(row.running_at);
  const endedAt = optional(row.ended_at);
  const safeAt = optional(row.safe_at);
  if (runningAt !== undefined) p.runningAt = runningAt;
  if (endedAt !== undefined) p.endedAt = endedAt;
  if (safeAt !== undefined) p.safeAt = safeAt;
  if (row.end_reason !== null && row.end_reason !== undefined) p.endReason = String(row.end_reason);
  return p;
}

function toService(row: Record<string, unknown>, history: Placement[]): Service {
  const name = String(row.name);
  const service: Service = {
    name,
    action: String(row.action),
    selector: parseJson(SelectorJson, row.selector, `selector of service ${name}`),
    createdAt: Number(row.created_at),
    seq: Number(row.seq),
    status: String(row.status) as ServiceStatus,
    generation: Number(row.generation),
    history,
  };
  if (row.arg !== null && row.arg !== undefined) service.arg = String(row.arg);
  if (row.current !== null && row.current !== undefined) service.current = parseJson(PlacementJson, row.current, `current placement of service ${name}`);
  return service;
}

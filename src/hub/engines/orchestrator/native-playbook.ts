import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { OrchestratorName } from '../../../shared/contract/orchestrator-messages.js';

/** Without `timeout`, a step may take this long, or its `duration` plus DURATION_GRACE_S. */
export const DEFAULT_TIMEOUT_S = 60;
export const DURATION_GRACE_S = 30;

const Seconds = z.number().positive();
const LabelSelector = z
  .record(z.string().min(1), z.string())
  .refine((labels) => Object.keys(labels).length > 0, 'a label selector needs at least one label');
const Target = z.union([OrchestratorName, LabelSelector]);
export type Target = z.infer<typeof Target>;

const ActionStep = z
  .object({
    id: OrchestratorName,
    /** Agent ids and/or label selectors like {role: client}; one or a list. */
    targets: z.union([Target, z.array(Target).min(1)]),
    action: OrchestratorName,
    args: z.array(z.union([z.string(), z.number()]).transform(String)).max(64).default([]),
    duration: Seconds.optional(),
    timeout: Seconds.optional(),
    after: z.array(OrchestratorName).default([]),
    onFailure: z.enum(['stop', 'continue']).default('stop'),
  })
  .strict()
  .refine((s) => s.timeout === undefined || s.duration === undefined || s.timeout > s.duration, {
    message: 'timeout must be longer than duration',
    path: ['timeout'],
  });
const BarrierStep = z.object({ barrier: OrchestratorName }).strict();
const Header = z
  .object({
    name: z.string().min(1).max(200).optional(),
    /** Seconds between the hub sending "start at T" and T; overrides the hub's engines.orchestrator.startMargin. */
    startMargin: z.number().positive().max(60).optional(),
    steps: z.array(z.unknown()).min(1),
  })
  .strict();

export type PlanStep = {
  id: string;
  kind: 'action' | 'barrier';
  targets: Target[];
  action: string | null;
  args: string[];
  durationMs: number | null;
  timeoutMs: number;
  deps: string[];
  onFailure: 'stop' | 'continue';
};
export type NativePlaybook = { name: string; startMarginMs: number | null; steps: PlanStep[] };
export type NativeParse = { ok: true; playbook: NativePlaybook } | { ok: false; errors: string[] };

/** One line per problem, each naming its key (steps.2.targets: …). */
function issues(prefix: string, error: z.ZodError): string[] {
  return error.issues.map((i) => `${[prefix, ...i.path.map(String)].filter((p) => p !== '').join('.') || '(root)'}: ${i.message}`);
}

/**
 * Dependencies: a step waits for its `after:` steps and for the nearest barrier above it; a
 * barrier waits for everything above it. Steps with neither start together when the run starts.
 */
function normalise(raw: unknown[], errors: string[]): PlanStep[] {
  const steps: PlanStep[] = [];
  let barrier: string | null = null;
  let sinceBarrier: string[] = [];
  raw.forEach((item, i) => {
    const isBarrier = typeof item === 'object' && item !== null && 'barrier' in item;
    if (isBarrier) {
      const b = BarrierStep.safeParse(item);
      if (!b.success) return void errors.push(...issues(`steps.${i}`, b.error));
      const deps = [...(barrier ? [barrier] : []), ...sinceBarrier];
      steps.push({ id: b.data.barrier, kind: 'barrier', targets: [], action: null, args: [], durationMs: null, timeoutMs: 0, deps, onFailure: 'stop' });
      barrier = b.data.barrier;
      sinceBarrier = [];
      return;
    }
    const s = ActionStep.safeParse(item);
    if (!s.success) return void errors.push(...issues(`steps.${i}`, s.error));
    const st = s.data;
    const timeout = st.timeout ?? (st.duration !== undefined ? st.duration + DURATION_GRACE_S : DEFAULT_TIMEOUT_S);
    steps.push({
      id: st.id,
      kind: 'action',
      targets: Array.isArray(st.targets) ? st.targets : [st.targets],
      action: st.action,
      args: st.args,
      durationMs: st.duration !== undefined ? st.duration * 1000 : null,
      timeoutMs: timeout * 1000,
      deps: [...new Set([...(barrier ? [barrier] : []), ...st.after])],
      onFailure: st.onFailure,
    });
    sinceBarrier.push(st.id);
  });
  return steps;
}

/** Unique ids, known `after:` references, and no cycles. */
function checkGraph(steps: PlanStep[], errors: string[]): void {
  const byId = new Map<string, PlanStep>();
  for (const s of steps) {
    if (byId.has(s.id)) errors.push(`steps: duplicate id "${s.id}"`);
    byId.set(s.id, s);
  }
  if (errors.length) return; // with duplicate ids, references are ambiguous
  for (const s of steps) for (const d of s.deps) if (!byId.has(d)) errors.push(`steps.${s.id}.after: unknown step "${d}"`);
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string, path: string[]): void => {
    if (state.get(id) === 'done' || !byId.has(id)) return;
    if (state.get(id) === 'visiting') return void errors.push(`steps: dependency cycle ${[...path, id].join(' → ')}`);
    state.set(id, 'visiting');
    for (const d of byId.get(id)!.deps) visit(d, [...path, id]);
    state.set(id, 'done');
  };
  for (const s of steps) visit(s.id, []);
}

/** Parses and checks a native YAML playbook, listing every problem with its key. */
export function parseNativePlaybook(text: string, file: string): NativeParse {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    return { ok: false, errors: [`not valid YAML: ${(err as Error).message}`] };
  }
  const header = Header.safeParse(raw);
  if (!header.success) return { ok: false, errors: issues('', header.error) };
  const errors: string[] = [];
  const steps = normalise(header.data.steps, errors);
  if (errors.length === 0) checkGraph(steps, errors);
  if (errors.length) return { ok: false, errors };
  const name = header.data.name ?? file.replace(/^.*\//, '').replace(/\.ya?ml$/, '');
  return { ok: true, playbook: { name, startMarginMs: header.data.startMargin !== undefined ? header.data.startMargin * 1000 : null, steps } };
}

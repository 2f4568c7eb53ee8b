import { z } from 'zod';
import { isFilter } from '../../../shared/contract/access.js';
import { JOB_NAME, type JobParam, type JobResources, type JobRow } from './model.js';

/**
 * One row of the jobs table as written (snake_case keys, CSV cells or YAML values) → a JobRow,
 * or every reason it is not one. Pure.
 */

/** The seed's columns, in its order. */
export const SEED_COLUMNS = ['job_name', 'mqtt_topic', 'image', 'cpu_request', 'cpu_limit', 'memory_request', 'memory_limit', 'gpu', 'disk_request', 'disk_limit', 'parallelism'] as const;
const KUBERNETES_ONLY = ['image', 'command', 'args', 'cpu_request', 'cpu_limit', 'memory_request', 'memory_limit', 'gpu', 'disk_request', 'disk_limit', 'parallelism', 'completions', 'backoff_limit', 'active_deadline_seconds'] as const;
const AGENT_ONLY = ['action', 'selector', 'timeout_seconds'] as const;
/** Every key a row may have; in a CSV the extra ones are optional columns. */
export const COLUMNS = [...SEED_COLUMNS, 'executor', 'concurrency', 'params', 'command', 'args', 'completions', 'backoff_limit', 'active_deadline_seconds', ...AGENT_ONLY] as const;
/** Columns whose CSV cell holds a list or a map, written as YAML flow (`[python, run.py]`, `{gpu: "yes"}`) or JSON. */
export const STRUCTURED_COLUMNS: ReadonlySet<string> = new Set(['command', 'args', 'selector', 'params']);

/** Without `backoff_limit`, the seed's 0: a failed pod fails the run at once and the chain hears of it. */
export const DEFAULT_BACKOFF_LIMIT = 0;
export const DEFAULT_TIMEOUT_SECONDS = 3600;

/** A Kubernetes quantity (`500m`, `2`, `0.5`, `512Mi`, `1G`, `1e3`); no sign: these are resources. */
const QUANTITY = /^(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;
const SUFFIX: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** The amount a quantity stands for (close enough to compare a request with its limit). */
export function quantityValue(quantity: string): number {
  const m = QUANTITY.exec(quantity);
  if (!m) throw new Error(`not a quantity: ${quantity}`);
  const suffix = m[2] ?? '';
  const scale = suffix === '' ? 1 : /^[eE]/.test(suffix) ? 10 ** Number(suffix.slice(1)) : SUFFIX[suffix]!;
  return Number(m[1]) * scale;
}

/** CSV cells are strings and YAML scalars may be numbers: both are read as text. */
const verbatim = z.union([z.string(), z.number()]).transform(String);
const text = verbatim.transform((v) => v.trim());
const quantity = text.pipe(z.string().regex(QUANTITY, 'expected a Kubernetes quantity such as 500m, 2, 512Mi or 1G'));
const whole = (min: number) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (Number.isSafeInteger(n) && n >= min) return n;
    ctx.addIssue({ code: 'custom', message: `expected a whole number ≥ ${min}` });
    return z.NEVER;
  });
const argv = z.array(verbatim).min(1, 'expected a non-empty list');

export const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A declared parameter's value check: the whole value must match (unicode). */
export function paramRegExp(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, 'u');
}

const Param = z
  .strictObject({
    pattern: z.string().min(1, 'expected a regular expression'),
    default: text.optional(),
    required: z.boolean().default(false),
  })
  .superRefine((p, ctx) => {
    let re: RegExp;
    try {
      re = paramRegExp(p.pattern);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['pattern'], message: `not a valid regular expression (${(err as Error).message})` });
      return;
    }
    if (p.default !== undefined && !re.test(p.default)) ctx.addIssue({ code: 'custom', path: ['default'], message: `does not match its pattern` });
    if (p.default !== undefined && p.required) ctx.addIssue({ code: 'custom', path: ['required'], message: 'a required parameter has no default' });
  });

const Params = z.record(z.string(), Param).superRefine((params, ctx) => {
  // Each reaches the job as PUSHFLEET_JOB_PARAM_<NAME>: names equal but for case would clash there.
  const seen = new Map<string, string>();
  for (const name of Object.keys(params)) {
    if (!PARAM_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'parameter names are letters, digits and "_", not starting with a digit' });
    const env = name.toUpperCase();
    const other = seen.get(env);
    if (other !== undefined) ctx.addIssue({ code: 'custom', path: [name], message: `clashes with "${other}" (both are PUSHFLEET_JOB_PARAM_${env})` });
    seen.set(env, name);
  }
});

const Raw = z.object({
  job_name: text.pipe(z.string().regex(JOB_NAME, 'use 1-52 lowercase letters, digits or "-", starting and ending with a letter or digit')),
  mqtt_topic: text.pipe(z.string().min(1, 'required').refine(isFilter, 'not an MQTT topic filter ("+" and "#" only as whole levels, "#" last)')),
  executor: z.enum(['kubernetes', 'agent']).optional(),
  concurrency: z.enum(['allow', 'forbid', 'replace']).default('allow'),
  params: Params.default({}),
  image: text.pipe(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,1023}$/, 'expected an image reference (registry/name:tag or name@sha256:…)')).optional(),
  command: argv.optional(),
  args: z.array(verbatim).optional(),
  cpu_request: quantity.optional(),
  cpu_limit: quantity.optional(),
  memory_request: quantity.optional(),
  memory_limit: quantity.optional(),
  gpu: whole(0).optional(),
  disk_request: quantity.optional(),
  disk_limit: quantity.optional(),
  parallelism: whole(1).optional(),
  completions: whole(1).optional(),
  backoff_limit: whole(0).optional(),
  active_deadline_seconds: whole(1).optional(),
  action: text.pipe(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected an action name (letters, digits, ".", "_", "-")')).optional(),
  selector: z.record(z.string().min(1), verbatim).optional(),
  timeout_seconds: whole(1).optional(),
});
type Raw = z.infer<typeof Raw>;

const PAIRS = [
  ['cpu_request', 'cpu_limit'],
  ['memory_request', 'memory_limit'],
  ['disk_request', 'disk_limit'],
] as const;

/**
 * The row, or why not: every problem at once, each naming its key. `fields` has no empty
 * values (an empty CSV cell or a YAML null is an unset key).
 */
export function validateRow(fields: Record<string, unknown>, line: number): { row: JobRow } | { reason: string } {
  const unknown = Object.keys(fields).filter((k) => !(COLUMNS as readonly string[]).includes(k));
  if (unknown.length) return { reason: `unknown ${unknown.length === 1 ? 'key' : 'keys'} ${unknown.map((k) => `"${k}"`).join(', ')}` };
  const parsed = Raw.safeParse(fields);
  if (!parsed.success) return { reason: parsed.error.issues.map((i) => `${i.path.join('.') || '(row)'}: ${i.message}`).join('; ') };
  const raw = parsed.data;
  const executor = raw.executor ?? (raw.image !== undefined && raw.action === undefined ? 'kubernetes' : raw.action !== undefined && raw.image === undefined ? 'agent' : undefined);
  if (executor === undefined) {
    return { reason: raw.image !== undefined ? 'image and action are both set: set executor (kubernetes or agent)' : 'set image (a Kubernetes Job) or action (an agent action)' };
  }
  const problems = executor === 'kubernetes' ? kubernetesProblems(raw) : agentProblems(raw);
  if (problems.length) return { reason: problems.join('; ') };
  const common = { line, jobName: raw.job_name, mqttTopic: raw.mqtt_topic, concurrency: raw.concurrency, params: raw.params as Record<string, JobParam> };
  if (executor === 'agent') return { row: { ...common, executor, action: raw.action!, selector: raw.selector ?? {}, timeoutSeconds: raw.timeout_seconds ?? DEFAULT_TIMEOUT_SECONDS } };
  const parallelism = raw.parallelism ?? 1;
  return {
    row: {
      ...common,
      executor,
      image: raw.image!,
      ...(raw.command && { command: raw.command }),
      ...(raw.args && { args: raw.args }),
      resources: resources(raw),
      parallelism,
      // The seed sets only parallelism, leaving Kubernetes to run that many pods that must all
      // succeed (backoff 0): completions = parallelism keeps that.
      completions: raw.completions ?? parallelism,
      backoffLimit: raw.backoff_limit ?? DEFAULT_BACKOFF_LIMIT,
      ...(raw.active_deadline_seconds !== undefined && { activeDeadlineSeconds: raw.active_deadline_seconds }),
    },
  };
}

function kubernetesProblems(raw: Raw): string[] {
  const problems = foreign(raw, AGENT_ONLY, 'agent');
  if (raw.image === undefined) problems.unshift('image: required for a kubernetes row');
  for (const [request, limit] of PAIRS) {
    const r = raw[request];
    const l = raw[limit];
    if (r !== undefined && l !== undefined && quantityValue(r) > quantityValue(l)) problems.push(`${request}: ${r} is more than ${limit} ${l}`);
  }
  return problems;
}

function agentProblems(raw: Raw): string[] {
  const problems = foreign(raw, KUBERNETES_ONLY, 'kubernetes');
  if (raw.action === undefined) problems.unshift('action: required for an agent row');
  return problems;
}

/** Keys of the other executor: set, they would promise what this one does not do. */
function foreign(raw: Raw, keys: readonly (keyof Raw)[], kind: string): string[] {
  return keys.filter((k) => raw[k] !== undefined).map((k) => `${k}: applies to ${kind} rows only`);
}

function resources(raw: Raw): JobResources {
  const out: JobResources = {};
  if (raw.cpu_request !== undefined) out.cpuRequest = raw.cpu_request;
  if (raw.cpu_limit !== undefined) out.cpuLimit = raw.cpu_limit;
  if (raw.memory_request !== undefined) out.memoryRequest = raw.memory_request;
  if (raw.memory_limit !== undefined) out.memoryLimit = raw.memory_limit;
  // The seed's tables write 0 for no GPU: no nvidia.com/gpu at all, not a request for zero.
  if (raw.gpu !== undefined && raw.gpu > 0) out.gpu = raw.gpu;
  if (raw.disk_request !== undefined) out.diskRequest = raw.disk_request;
  if (raw.disk_limit !== undefined) out.diskLimit = raw.disk_limit;
  return out;
}

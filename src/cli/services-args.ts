import { InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { ServiceStatusName } from '../shared/contract/services-engine-messages.js';
import { ActionName } from '../shared/contract/jobs-messages.js';
import { ServiceArg, ServiceName } from '../shared/contract/services-messages.js';

// Commander parsers for `pushfleet services …`: each checks one flag with the contract's schema,
// so a bad value is a usage error (exit 2) naming the flag before any broker is contacted.

/** A parser taking what `schema` takes; otherwise the schema's first complaint. */
const parsed =
  <T>(schema: z.ZodType<T>) =>
  (value: string): T => {
    const r = schema.safeParse(value);
    if (!r.success) throw new InvalidArgumentError(r.error.issues[0]!.message);
    return r.data;
  };

export const serviceNameArg = parsed(ServiceName);
export const actionArg = parsed(ActionName);
export const serviceArgArg = parsed(ServiceArg);
export const statusArg = parsed(ServiceStatusName);

const count = (min: number, max: number) =>
  parsed(
    z
      .string()
      .regex(/^[0-9]{1,7}$/, 'expected a whole number')
      .transform(Number)
      .pipe(z.number().min(min, `expected at least ${min}`).max(max, `expected at most ${max}`)),
  );
export const offsetArg = count(0, 9_999_999);
/** Within the contract's Page: at most 1000 a page. */
export const limitArg = count(1, 1000);
export const generationArg = count(1, 9_999_999);

const Label = z.object({ key: z.string().min(1, 'expected k=v with a key').max(128, 'a label key has at most 128 characters'), value: z.string().max(256, 'a label value has at most 256 characters') });
const MAX_LABELS = 32;

/** `--selector k=v`, repeatable: the labels an agent must have, collected into one object. */
export function selectorArg(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq === -1) throw new InvalidArgumentError(`expected k=v (a label an agent must have), not "${value.slice(0, 64)}"`);
  const label = Label.safeParse({ key: value.slice(0, eq), value: value.slice(eq + 1) });
  if (!label.success) throw new InvalidArgumentError(label.error.issues[0]!.message);
  const { key, value: v } = label.data;
  if (Object.hasOwn(previous, key)) throw new InvalidArgumentError(`label "${key}" given twice`);
  if (Object.keys(previous).length >= MAX_LABELS) throw new InvalidArgumentError(`at most ${MAX_LABELS} labels`);
  return { ...previous, [key]: v };
}

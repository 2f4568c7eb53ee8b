import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describeIssues } from './messages.js';

/** A config problem a person can fix: the message names the file and every offending key. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads a YAML (or JSON) file, returning {} when no file is given. */
export function readConfigFile(file: string | undefined): unknown {
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError(`config ${file} is not valid YAML: ${(err as Error).message}`);
  }
}

/** Validates config against its schema, listing every bad key at once. */
export function validateConfig<S extends z.ZodType>(schema: S, raw: unknown, source: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`invalid config ${source}: ${describeIssues(parsed.error)}`);
  }
  return parsed.data;
}

/** A config string that must compile as a regular expression with `flags`. */
export function regexSource(flags = ''): z.ZodString {
  const compiles = (pattern: string) => {
    try {
      new RegExp(pattern, flags);
      return true;
    } catch {
      return false;
    }
  };
  return z.string().refine(compiles, 'not a valid regular expression');
}

/** Sets `value` at a dotted path in a plain object tree, creating levels as needed. */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys.at(-1)!] = value;
}

import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { issueLines } from './messages.js';

/** A config problem a person can fix: the message names the file and every offending key. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** `invalid config <file>:` and one indented line per problem, so a person fixes them all in one go. */
export function invalidConfig(what: string, problems: readonly string[]): ConfigError {
  return new ConfigError([`invalid ${what}:`, ...problems.map((p) => `  ${p}`)].join('\n'));
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
  const doc = parseDocument(text);
  // Every syntax error at once, each as `line L, column C: what` (yaml's own message adds a code frame).
  if (doc.errors.length > 0) throw invalidConfig(`config ${file}`, doc.errors.map((e) => `${e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}: ` : ''}${e.message.split(/ at line \d+, column \d+/)[0]}`));
  return doc.toJS() ?? {};
}

/** Validates config against its schema, listing every bad key at once. */
export function validateConfig<S extends z.ZodType>(schema: S, raw: unknown, source: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw invalidConfig(`config ${source}`, issueLines(parsed.error));
  }
  return parsed.data;
}

/**
 * Options for a cross-field refinement so that it runs even when other keys of the object failed
 * (zod skips refinements after any error, which hid e.g. a missing `branch` until every other
 * error was fixed), as long as the keys it reads parsed.
 */
export function whenParsed(...keys: string[]): { when: (payload: z.core.ParsePayload) => boolean } {
  return {
    when: ({ value, issues }) => typeof value === 'object' && value !== null && !issues.some((i) => i.path?.[0] !== undefined && keys.includes(String(i.path[0]))),
  };
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

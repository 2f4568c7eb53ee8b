import { readFileSync } from 'node:fs';
import type { z } from 'zod';

/**
 * Reads one of the agent's JSON files in its state dir: a missing file is `empty`; a damaged one
 * is an error naming it (and what to do, `advice`), rather than a guess at what it held.
 */
export function readStateFile<T, E>(file: string, schema: z.ZodType<T>, empty: E, advice?: string): T | E {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return empty;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is damaged (${(err as Error).message})${advice ? `; ${advice}` : ''}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new Error(`${file} is damaged: ${parsed.error.issues[0]?.message}${advice ? `; ${advice}` : ''}`);
  return parsed.data;
}

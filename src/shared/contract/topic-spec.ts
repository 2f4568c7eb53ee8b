import type { z } from 'zod';
import { decode } from '../messages.js';
import { TopicPattern } from './topic-pattern.js';
import type { PayloadCheck, TopicSpec } from './topic-table.js';

/** One row of the topic table; neither signed nor retained unless it says so. */
export const topicSpec = (name: string, pattern: string, rest: Omit<TopicSpec, 'name' | 'pattern' | 'signed' | 'retained'> & Partial<Pick<TopicSpec, 'signed' | 'retained'>>): TopicSpec => ({
  name,
  pattern: new TopicPattern(pattern),
  signed: false,
  retained: false,
  ...rest,
});

export const json =
  <T>(schema: z.ZodType<T>): PayloadCheck =>
  (raw) =>
    decode(schema, raw);
/** A retained topic is cleared with an empty payload. */
export const orEmpty =
  (check: PayloadCheck): PayloadCheck =>
  (raw) =>
    raw.length === 0 ? { ok: true, value: null } : check(raw);
export const anything: PayloadCheck = (raw) => ({ ok: true, value: raw });

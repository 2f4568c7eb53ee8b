import { z } from 'zod';

/** A Prometheus label value is any string; an agent label key here must be one an agent can carry. */
const LabelKey = z.string().min(1).max(63);

/** `metrics` in the hub config: who may scrape GET /metrics, and how agents are broken down by label. */
export const MetricsConfig = z
  .object({
    /**
     * Let GET /metrics answer without a token. Off: a scrape needs a users-file account of role
     * viewer or operator, like the API (Prometheus: `authorization: { credentials: <name>:<password> }`).
     */
    allowAnonymous: z.boolean().default(false),
    /** Agent label keys broken down on pushfleet_agents_by_label (each one series per value and state). */
    agentLabels: z
      .array(LabelKey)
      .max(10, 'at most 10 keys: every key multiplies the series Prometheus keeps')
      .refine((keys) => new Set(keys).size === keys.length, 'each key once')
      .default(['env']),
    /** Values kept per key, most agents first; the other agents are summed as value="__other__", so a label per host stays a few series. */
    maxLabelValues: z.number().int().min(1).max(1000).default(20),
    /** Agents followed for the agent and update metrics; beyond it new agents are left out (and logged). */
    maxAgents: z.number().int().positive().default(100_000),
  })
  .strict();
export type MetricsConfig = z.infer<typeof MetricsConfig>;

import { createRequire } from 'node:module';

/** The slice of autocannon's API (a CommonJS module without bundled types) the benches use. */
export type AutocannonRequest = {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  setupRequest?: (req: AutocannonRequest, context: Record<string, unknown>) => AutocannonRequest | null;
};
export type AutocannonOptions = {
  url: string;
  connections?: number;
  pipelining?: number;
  amount?: number;
  /** With `duration`: stop after this many responses in all, if that comes first. */
  maxOverallRequests?: number;
  duration?: number;
  timeout?: number;
  method?: string;
  requests?: AutocannonRequest[];
};
type Histogram = { average: number; mean: number; stddev: number; min: number; max: number; total: number; p50: number; p90: number; p99: number; p99_9?: number };
export type AutocannonResult = {
  duration: number;
  latency: Histogram;
  requests: Histogram & { sent: number };
  throughput: Histogram;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  '4xx': number;
  '5xx': number;
  statusCodeStats?: Record<string, { count: number }>;
};
type Autocannon = (opts: AutocannonOptions, cb?: (err: Error | null, result: AutocannonResult) => void) => unknown;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export function runAutocannon(opts: AutocannonOptions): Promise<AutocannonResult> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

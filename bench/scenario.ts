/** One benchmark scenario: it runs against real processes and returns the figures it measured. */
export type Figures = Record<string, number | string>;
/** `args`: what follows the name filter on the command line (`npm run bench fleet -- --agents 1000`). */
export type Scenario = { name: string; run(args?: readonly string[]): Promise<Figures> };

/** p-th percentile (0..100) of the samples, nearest-rank. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

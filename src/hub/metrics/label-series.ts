/** One agent as the label breakdown sees it. */
export type LabelledAgent = { online: boolean; labels: Readonly<Record<string, string>> };

export type LabelSeries = { label: string; value: string; state: 'online' | 'offline'; agents: number };

/** The value of agents that do not carry the key. */
export const UNSET = '__unset__';
/** The sum of the values past maxValues. */
export const OTHER = '__other__';

/**
 * Agents per value of each key in `keys`, online and offline. At most `maxValues` values per key
 * (those with most agents, then by name, so the choice is stable between scrapes); the rest are
 * summed under OTHER. Every (key, kept value) has both states, zeros included, so a value going
 * all offline reads 0 rather than vanishing.
 */
export function labelSeries(agents: Iterable<LabelledAgent>, keys: readonly string[], maxValues: number): LabelSeries[] {
  const counts = keys.map(() => new Map<string, { online: number; offline: number }>());
  for (const agent of agents) {
    keys.forEach((key, i) => {
      const value = agent.labels[key] ?? UNSET;
      const c = counts[i]!.get(value) ?? { online: 0, offline: 0 };
      c[agent.online ? 'online' : 'offline']++;
      counts[i]!.set(value, c);
    });
  }
  return keys.flatMap((label, i) => {
    const ranked = [...counts[i]!].sort(([a, x], [b, y]) => y.online + y.offline - (x.online + x.offline) || (a < b ? -1 : a > b ? 1 : 0));
    const kept = ranked.slice(0, maxValues);
    const rest = ranked.slice(maxValues);
    if (rest.length) kept.push([OTHER, rest.reduce((sum, [, c]) => ({ online: sum.online + c.online, offline: sum.offline + c.offline }), { online: 0, offline: 0 })]);
    return kept.flatMap(([value, c]) => [
      { label, value, state: 'online' as const, agents: c.online },
      { label, value, state: 'offline' as const, agents: c.offline },
    ]);
  });
}

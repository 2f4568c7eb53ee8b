/**
 * A topic pattern: fixed literal levels and named one-level parameters, written
 * `pushfleet/agents/{agent}/pins/{app}`. Patterns never contain MQTT wildcards; filters do.
 */
export type Params = Record<string, string>;

/** How a subscription filter covers one parameter: one exact value, or any value (`+`, `#`). */
export type Covered = Record<string, string | typeof ANY>;
export const ANY = Symbol('any value');

type Level = { literal: string } | { param: string };

export class TopicPattern {
  private readonly levels: readonly Level[];

  constructor(readonly source: string) {
    this.levels = source.split('/').map((l) => {
      const m = /^\{([a-z]+)\}$/.exec(l);
      if (m) return { param: m[1]! };
      if (/[{}+#]/.test(l)) throw new Error(`bad topic pattern level "${l}" in ${source}`);
      return { literal: l };
    });
  }

  /** The parameter values of `topic`, or null when it is not this pattern's. */
  match(topic: string): Params | null {
    const parts = topic.split('/');
    if (parts.length !== this.levels.length) return null;
    const params: Params = {};
    for (let i = 0; i < parts.length; i++) {
      const level = this.levels[i]!;
      const part = parts[i]!;
      if ('literal' in level) {
        if (level.literal !== part) return null;
      } else {
        if (part === '' || part === '+' || part === '#') return null;
        params[level.param] = part;
      }
    }
    return params;
  }

  /**
   * Whether some topic of this pattern matches `filter`, and if so what the filter fixes of each
   * parameter; null when they are disjoint.
   */
  overlap(filter: string): Covered | null {
    const parts = filter.split('/');
    const covered: Covered = {};
    for (let i = 0; i < this.levels.length; i++) {
      const level = this.levels[i]!;
      const part = parts[i];
      if (part === '#') {
        for (const rest of this.levels.slice(i)) if ('param' in rest) covered[rest.param] = ANY;
        return covered;
      }
      if (part === undefined) return null;
      if ('literal' in level) {
        if (part !== '+' && part !== level.literal) return null;
      } else {
        if (part === '') return null;
        covered[level.param] = part === '+' ? ANY : part;
      }
    }
    // `a/b/#` also matches `a/b`: a longer filter ending in `#` covers this pattern.
    if (parts.length === this.levels.length) return covered;
    return parts.length === this.levels.length + 1 && parts[parts.length - 1] === '#' ? covered : null;
  }

  format(params: Params): string {
    return this.levels.map((l) => ('literal' in l ? l.literal : required(params, l.param, this.source))).join('/');
  }

  /** The pattern as a filter: every parameter `+`, or the value given for it. */
  filter(fixed: Params = {}): string {
    return this.levels.map((l) => ('literal' in l ? l.literal : (fixed[l.param] ?? '+'))).join('/');
  }

  get params(): string[] {
    return this.levels.flatMap((l) => ('param' in l ? [l.param] : []));
  }
}

function required(params: Params, name: string, source: string): string {
  const value = params[name];
  if (value === undefined) throw new Error(`no value for {${name}} in ${source}`);
  return value;
}

/**
 * Deadlines by key in one binary min-heap: setting, moving or clearing one costs O(log n), and
 * whoever runs them needs one timer, for `next()`. A moved or cleared deadline leaves its old heap
 * entry behind; entries that no longer match `at` are skipped when they come up.
 */
export class DeadlineQueue<K> {
  private readonly at = new Map<K, number>();
  private readonly heap: { key: K; at: number }[] = [];

  /** Sets `key`'s deadline (ms), or clears it with null. */
  set(key: K, at: number | null): void {
    if (at === null) {
      this.at.delete(key);
      return;
    }
    if (this.at.get(key) === at) return;
    this.at.set(key, at);
    this.push({ key, at });
    // Stale entries are dropped lazily; past twice the live ones, rebuild so the heap stays O(live).
    if (this.heap.length > 2 * this.at.size + 16) this.rebuild();
  }

  get size(): number {
    return this.at.size;
  }

  /** The earliest deadline, undefined when there is none. */
  next(): number | undefined {
    this.dropStale();
    return this.heap[0]?.at;
  }

  /** Takes out and returns the keys due at `now`, earliest first. */
  due(now: number): K[] {
    const keys: K[] = [];
    for (let top = this.next(); top !== undefined && top <= now; top = this.next()) {
      const { key } = this.pop();
      this.at.delete(key);
      keys.push(key);
    }
    return keys;
  }

  clear(): void {
    this.at.clear();
    this.heap.length = 0;
  }

  private dropStale(): void {
    while (this.heap.length && this.at.get(this.heap[0]!.key) !== this.heap[0]!.at) this.pop();
  }

  private rebuild(): void {
    this.heap.length = 0;
    for (const [key, at] of this.at) this.push({ key, at });
  }

  private push(entry: { key: K; at: number }): void {
    const h = this.heap;
    h.push(entry);
    for (let i = h.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.at <= h[i]!.at) break;
      [h[parent], h[i]] = [h[i]!, h[parent]!];
      i = parent;
    }
  }

  private pop(): { key: K; at: number } {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let min = i;
        if (l < h.length && h[l]!.at < h[min]!.at) min = l;
        if (r < h.length && h[r]!.at < h[min]!.at) min = r;
        if (min === i) break;
        [h[min], h[i]] = [h[i]!, h[min]!];
        i = min;
      }
    }
    return top;
  }
}

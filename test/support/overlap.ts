import { existsSync, readFileSync } from 'node:fs';

/** How often test/fixtures/services/service.mjs writes a tick (its TICK_MS). */
export const TICK_MS = 50;

/** One process of a service, from its records: `endNs` is its stop or crash, else its last tick + TICK_MS (a SIGKILLed copy writes nothing more). */
export type Copy = { name: string; generation: number; agent: string; pid: number; startNs: bigint; endNs: bigint; ended: 'stop' | 'crash' | 'killed'; events: string[]; termNs?: bigint };

const NS_PER_MS = 1_000_000n;

/** Every copy the records show, in the order they started. */
export function readCopies(file: string): Copy[] {
  if (!existsSync(file)) return [];
  const copies = new Map<number, Copy>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [event, name, generation, agent, ns, pid] = line.split(' ');
    // A line cut short by a kill -9 mid-write is not a record.
    if (!event || pid === undefined || !/^\d+$/.test(ns!) || !/^\d+$/.test(pid)) continue;
    const at = BigInt(ns!);
    let copy = copies.get(Number(pid));
    if (!copy) copies.set(Number(pid), (copy = { name: name!, generation: Number(generation), agent: agent!, pid: Number(pid), startNs: at, endNs: at + BigInt(TICK_MS) * NS_PER_MS, ended: 'killed', events: [] }));
    copy.events.push(event);
    if (event === 'term') copy.termNs ??= at;
    if (event === 'stop' || event === 'crash') {
      copy.endNs = at;
      copy.ended = event;
    } else if (copy.ended === 'killed') copy.endNs = at + BigInt(TICK_MS) * NS_PER_MS;
  }
  return [...copies.values()].sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
}

const ms = (ns: bigint): string => `${(Number(ns) / 1e6).toFixed(1)} ms`;
const describe = (c: Copy, t0: bigint): string => `generation ${c.generation} on ${c.agent} (pid ${c.pid}, ${ms(c.startNs - t0)} → ${ms(c.endNs - t0)}, ended: ${c.ended})`;

/** Where two copies of one service ran at the same time, in words; empty when none did. */
export function overlaps(copies: readonly Copy[]): string[] {
  const t0 = copies[0]?.startNs ?? 0n;
  const found: string[] = [];
  const byName = new Map<string, Copy[]>();
  for (const c of copies) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
  for (const [name, list] of byName) {
    for (let i = 0; i < list.length; i++)
      for (let j = i + 1; j < list.length; j++) {
        const [a, b] = [list[i]!, list[j]!];
        // Sorted by start: b started while a still ran.
        if (b.startNs < a.endNs) found.push(`service ${name}: ${describe(b, t0)} started ${ms(a.endNs - b.startNs)} before ${describe(a, t0)} ended`);
      }
  }
  return found;
}

/** Throws, listing every overlap and each service's copies, if two copies of one service ever ran at once. */
export function assertNoOverlap(file: string): Copy[] {
  const copies = readCopies(file);
  const found = overlaps(copies);
  if (found.length > 0) {
    const t0 = copies[0]!.startNs;
    throw new Error(`two copies of a service ran at the same time:\n  ${found.join('\n  ')}\nall copies (ms from the first start):\n  ${copies.map((c) => `${c.name}: ${describe(c, t0)}`).join('\n  ')}`);
  }
  return copies;
}

/** The copies that still tick: their last record is less than `withinMs` old (CLOCK_MONOTONIC, as the fixture writes it). */
export function liveCopies(file: string, withinMs = 300): Copy[] {
  const now = process.hrtime.bigint();
  return readCopies(file).filter((c) => c.ended === 'killed' && now - c.endNs < BigInt(withinMs) * NS_PER_MS);
}

/** The most copies that ran at once on `agent`, from the records (for maxWorkers). */
export function mostAtOnce(copies: readonly Copy[], agent: string): number {
  const edges = copies.filter((c) => c.agent === agent).flatMap((c) => [{ at: c.startNs, d: 1 }, { at: c.endNs, d: -1 }]);
  // An end and a start at the same instant do not overlap: ends first.
  edges.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.d - b.d));
  let now = 0;
  let most = 0;
  for (const e of edges) most = Math.max(most, (now += e.d));
  return most;
}

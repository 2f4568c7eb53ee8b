import type { StoredPacket } from './broker-store.js';

type Node = { children: Map<string, Node>; packet: StoredPacket | undefined };
const node = (): Node => ({ children: new Map(), packet: undefined });

/**
 * The broker's retained messages as a tree of topic levels, so a subscription reads only the
 * branch its filter names: `pushfleet/agents/a1/pins/+` walks a1's pins, not every agent's state.
 * (aedes-persistence's in-memory index tests every retained topic against each filter, so N agents
 * subscribing on a hub that retains a few messages per agent cost N².) Wildcards as qlobber reads
 * them, the matcher aedes uses for live messages: `+` is one level, `#` is zero or more.
 */
export class RetainedIndex {
  private readonly root = node();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(topic: string): StoredPacket | undefined {
    let at: Node | undefined = this.root;
    for (const level of topic.split('/')) if (!(at = at.children.get(level))) return undefined;
    return at.packet;
  }

  /** Keeps `packet` (as is, not a copy) as `topic`'s retained message; `undefined` removes it. */
  set(topic: string, packet: StoredPacket | undefined): void {
    const levels = topic.split('/');
    if (!packet) return this.remove(levels);
    let at = this.root;
    for (const level of levels) {
      let next = at.children.get(level);
      if (!next) at.children.set(level, (next = node()));
      at = next;
    }
    if (!at.packet) this.count++;
    at.packet = packet;
  }

  /** The retained messages whose topics `filter` matches. */
  match(filter: string): StoredPacket[] {
    const out: StoredPacket[] = [];
    const levels = filter.split('/');
    const walk = (at: Node, i: number): void => {
      if (i === levels.length) {
        if (at.packet) out.push(at.packet);
        return;
      }
      const level = levels[i]!;
      if (level === '#') return collect(at, out);
      if (level === '+') for (const child of at.children.values()) walk(child, i + 1);
      else {
        const child = at.children.get(level);
        if (child) walk(child, i + 1);
      }
    };
    walk(this.root, 0);
    return out;
  }

  /** Removes the message and the levels left empty, so topics that come and go do not leave a trail. */
  private remove(levels: string[]): void {
    const path: Node[] = [this.root];
    for (const level of levels) {
      const next = path[path.length - 1]!.children.get(level);
      if (!next) return;
      path.push(next);
    }
    const leaf = path[path.length - 1]!;
    if (!leaf.packet) return;
    leaf.packet = undefined;
    this.count--;
    for (let i = levels.length; i > 0; i--) {
      const at = path[i]!;
      if (at.packet || at.children.size > 0) break;
      path[i - 1]!.children.delete(levels[i - 1]!);
    }
  }
}

function collect(at: Node, out: StoredPacket[]): void {
  if (at.packet) out.push(at.packet);
  for (const child of at.children.values()) collect(child, out);
}

import { join } from 'node:path';
import { z } from 'zod';
import { SlotFile, SlotFileDamaged } from '../src/shared/slot-file.js';
import type { SeenEntry, SeenStore } from '../src/shared/signing/verifier.js';

/** Topics remembered at most; the one accepted longest ago is forgotten first (an old rollout's go). */
export const MAX_SEEN_TOPICS = 10_000;

const SeenFile = z.object({ v: z.literal(1), topics: z.array(z.tuple([z.string(), z.number().int().nonnegative(), z.string()])) });

/**
 * The last signed message the agent accepted per topic, in `<stateDir>/signed-seen.json`, so a
 * restarted agent still refuses a replay of anything older. Written durably (a slot file, see
 * src/shared/slot-file.ts: one fdatasync) before the agent acts on the message it records.
 */
export class SeenSequenceFile implements SeenStore {
  readonly path: string;
  private readonly entries = new Map<string, SeenEntry>();
  /** One entry per replay-safe topic this agent reads (its own lease): not bounded by `max`, never on disk. */
  private readonly memory = new Map<string, SeenEntry>();

  private readonly file: SlotFile;

  constructor(
    stateDir: string,
    private readonly max = MAX_SEEN_TOPICS,
    /** Topics kept in memory only (TopicSpec.replaySafe). */
    private readonly inMemory: (topic: string) => boolean = () => false,
  ) {
    this.path = join(stateDir, 'signed-seen.json');
    this.file = new SlotFile(this.path);
  }

  /** Reads the file; a missing one is empty, a damaged one an error naming it (nothing is guessed). */
  load(): void {
    const damaged = (why: string) => new Error(`${this.path} is damaged (${why}); remove it to start over, which lets each topic's newest retained message in once`);
    let json: unknown;
    try {
      json = this.file.read();
    } catch (err) {
      throw err instanceof SlotFileDamaged ? damaged(err.why) : err;
    }
    if (json === undefined) return;
    const parsed = SeenFile.safeParse(json);
    if (!parsed.success) throw damaged(parsed.error.message.split('\n', 1)[0]!);
    for (const [topic, seq, sig] of parsed.data.topics.slice(-this.max)) this.entries.set(topic, { seq, sig });
  }

  get(topic: string): SeenEntry | undefined {
    return this.inMemory(topic) ? this.memory.get(topic) : this.entries.get(topic);
  }

  /** Recorded only once it is on disk: a failed write (a full disk) leaves memory as it was, and throws. */
  put(topic: string, entry: SeenEntry): void {
    if (this.inMemory(topic)) {
      this.memory.set(topic, entry);
      return;
    }
    const previous = this.entries.get(topic);
    this.entries.delete(topic);
    this.entries.set(topic, entry);
    let evicted: [string, SeenEntry] | undefined;
    if (this.entries.size > this.max) {
      evicted = this.entries.entries().next().value!;
      this.entries.delete(evicted[0]);
    }
    try {
      this.save();
    } catch (err) {
      this.entries.delete(topic);
      if (previous) this.entries.set(topic, previous);
      if (evicted) this.entries.set(...evicted);
      throw err;
    }
  }

  private save(): void {
    this.file.write({ v: 1, topics: [...this.entries].map(([t, e]) => [t, e.seq, e.sig]) });
  }
}

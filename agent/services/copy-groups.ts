import { join } from 'node:path';
import { z } from 'zod';
import { writePrivateFile } from '../../src/shared/private-file.js';
import type { ProcessGroup } from '../process-group.js';
import { readStateFile } from '../state-file.js';

const CopyGroup = z
  .object({
    generation: z.number().int().positive(),
    restarts: z.number().int().nonnegative(),
    group: z.object({ pgid: z.number().int().positive(), startTime: z.number().int().nonnegative(), bootId: z.string(), step: z.literal('service'), argv0: z.string() }).strict(),
  })
  .strict();
export type CopyGroup = { generation: number; restarts: number; group: ProcessGroup<'service'> };

/**
 * `<stateDir>/services/groups.json`: the process group of every copy running here, written
 * (atomically, fsynced) before the copy is let through its gate and forgotten when it ended. The
 * guard kills a copy when the agent dies; this is for a copy that outlived both (a guard killed
 * too, an agent started again before the guard acted): the restarted agent stops it before it
 * renews its lease, so the hub's next copy never overlaps it.
 */
export class CopyGroups {
  readonly file: string;
  private readonly groups: Record<string, CopyGroup>;

  constructor(stateDir: string) {
    this.file = join(stateDir, 'services', 'groups.json');
    this.groups = readStateFile(this.file, z.record(z.string(), CopyGroup), {}, 'stop what runs as its process groups first, then remove it');
  }

  /** The copies the agent's previous run left recorded. */
  recorded(): ReadonlyMap<string, CopyGroup> {
    return new Map(Object.entries(this.groups));
  }

  /** Durable before it returns; throws when it cannot be written (the copy is then not started). */
  put(name: string, copy: CopyGroup): void {
    writePrivateFile(this.file, JSON.stringify({ ...this.groups, [name]: copy }));
    this.groups[name] = copy;
  }

  /** Throws when the file cannot be written; a group left in it is harmless (a gone group is recognised as gone). */
  remove(name: string): void {
    if (!(name in this.groups)) return;
    const { [name]: _gone, ...rest } = this.groups;
    writePrivateFile(this.file, JSON.stringify(rest));
    delete this.groups[name];
  }
}

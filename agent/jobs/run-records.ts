import { readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { AgentJobStatus, RunId } from '../../src/shared/contract/jobs-messages.js';
import { writePrivateFile } from '../../src/shared/private-file.js';
import { readStateFile } from '../state-file.js';

export const RunRecord = z.object({
  v: z.literal(1),
  run: RunId,
  /** The last status of the run; `running` until it ended (or was found running after a restart). */
  status: AgentJobStatus,
  /** The run's process group while it runs, so a restarted agent can stop what it left behind. */
  group: z.object({ pgid: z.number().int().positive(), startTime: z.number().int().nonnegative(), bootId: z.string(), step: z.string(), argv0: z.string() }).nullable(),
  /** The broker acknowledged `status`: nothing to publish again after a restart. */
  published: z.boolean(),
});
export type RunRecord = z.infer<typeof RunRecord>;

/** Finished runs are remembered this long (a start redelivered later is refused as too old by the signature check anyway), and at most this many. */
const KEEP_MS = 24 * 3600_000;
const KEEP_MAX = 1000;

/**
 * One small file per run under `<stateDir>/jobs/`, written (atomically, fsynced) before the agent
 * acts on a start or reports an end: a redelivered start finds its run's record and is not run
 * again, and a restarted agent learns which runs it was running when it died.
 */
export class RunRecords {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'jobs');
  }

  private file(run: string): string {
    return join(this.dir, `${run}.json`);
  }

  get(run: string): RunRecord | undefined {
    return readStateFile(this.file(run), RunRecord, undefined);
  }

  /** Durable before it returns; throws when it cannot be written (a full disk): the caller then does not act. */
  put(record: RunRecord): void {
    writePrivateFile(this.file(record.run), JSON.stringify(record));
  }

  /** Every readable record; a damaged one is reported through `onDamaged` and left for a person to look at. */
  all(onDamaged: (file: string, err: Error) => void): RunRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names.flatMap((name) => {
      const m = /^([0-9a-f]{10})\.json$/.exec(name);
      if (!m) return [];
      try {
        return this.get(m[1]!) ?? [];
      } catch (err) {
        onDamaged(join(this.dir, name), err as Error);
        return [];
      }
    });
  }

  /** Forgets finished runs past KEEP_MS, and the oldest beyond KEEP_MAX. */
  prune(now: number): void {
    const finished = this.all(() => undefined)
      .filter((r) => r.status.state !== 'running' && r.published)
      .map((r) => ({ run: r.run, mtime: statSync(this.file(r.run)).mtimeMs }))
      .sort((a, b) => b.mtime - a.mtime);
    for (const [i, r] of finished.entries()) if (i >= KEEP_MAX || now - r.mtime > KEEP_MS) unlinkSync(this.file(r.run));
  }
}

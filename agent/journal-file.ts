import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { check } from '../src/shared/messages.js';
import { SlotFile } from '../src/shared/slot-file.js';
import { Journal } from './journal.js';

export type JournalStore = { save(journal: Journal): Promise<void> };

export type LoadedJournal = { journal: Journal | null; problem: string | null };

/**
 * One app's journal on disk, in a slot file (src/shared/slot-file.ts): each save overwrites the
 * slot not holding the newest record and fdatasyncs it, so after a crash or power loss the file
 * holds the old or the new record, never a torn one. A journal in the plain JSON of earlier
 * versions is read as it is and turned into a slot file by the next save.
 */
export class JournalFile implements JournalStore {
  readonly path: string;
  private readonly file: SlotFile;

  constructor(stateDir: string, app: string) {
    this.path = join(stateDir, 'apps', `${app}.json`);
    this.file = new SlotFile(this.path);
  }

  /** The stored journal; none (with the reason) when missing or unreadable. */
  async load(): Promise<LoadedJournal> {
    let json: unknown;
    try {
      json = this.file.read();
    } catch (err) {
      return { journal: null, problem: (err as Error).message };
    }
    if (json === undefined) return { journal: null, problem: null };
    const d = check(Journal, json);
    return d.ok ? { journal: d.value, problem: null } : { journal: null, problem: `${this.path}: ${d.error}` };
  }

  async save(journal: Journal): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true });
    this.file.write(journal);
  }
}

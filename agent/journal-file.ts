import { mkdirSync } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { check } from '../src/shared/messages.js';
import { Journal } from './journal.js';

export type JournalStore = { save(journal: Journal): Promise<void> };

export type LoadedJournal = { journal: Journal | null; problem: string | null };

/**
 * One app's journal on disk, replaced atomically: written to a temp file, fsynced, renamed over
 * the old one, and the directory fsynced, so after a crash or power loss it is the old or the
 * new record, never a torn one.
 */
export class JournalFile implements JournalStore {
  readonly path: string;

  constructor(stateDir: string, app: string) {
    this.path = join(stateDir, 'apps', `${app}.json`);
  }

  /** The stored journal; none (with the reason) when missing or unreadable. */
  async load(): Promise<LoadedJournal> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { journal: null, problem: null };
      return { journal: null, problem: `cannot read ${this.path}: ${(err as Error).message}` };
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      return { journal: null, problem: `${this.path} is not JSON: ${(err as Error).message}` };
    }
    const d = check(Journal, json);
    return d.ok ? { journal: d.value, problem: null } : { journal: null, problem: `${this.path}: ${d.error}` };
  }

  async save(journal: Journal): Promise<void> {
    const dir = dirname(this.path);
    mkdirSync(dir, { recursive: true });
    const temp = `${this.path}.tmp`;
    const file = await open(temp, 'w', 0o600);
    try {
      await file.writeFile(`${JSON.stringify(journal)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, this.path);
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}

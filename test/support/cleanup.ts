import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A stack of undo steps, run last-in first-out, so every test leaves nothing behind. */
export class Cleanup {
  private readonly steps: (() => unknown)[] = [];

  defer(step: () => unknown): void {
    this.steps.push(step);
  }

  /** A fresh directory under the system temp dir, removed with everything in it on cleanup. */
  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.defer(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    while (this.steps.length) {
      try {
        await this.steps.pop()!();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length) throw new AggregateError(errors, 'cleanup failed');
  }
}

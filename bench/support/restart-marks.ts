import { closeSync, openSync, readSync, watch, writeFileSync, type FSWatcher } from 'node:fs';

/**
 * The moment each restart happened, as the restart command itself reports it: the command appends
 * the SHA it restarted at to a file, and an inotify watch stamps each new line on arrival. Both
 * sides of the deploy-latency bench run the same command, so both end at the same point.
 */
export class RestartMarks {
  private readonly seen = new Map<string, number>();
  private readonly watcher: FSWatcher;
  private read = 0;
  private partial = '';

  constructor(readonly path: string) {
    writeFileSync(path, '');
    this.watcher = watch(path, () => this.drain(performance.now()));
  }

  /** When the restart at `sha` was seen (performance.now() time), if it was. */
  at(sha: string): number | undefined {
    this.drain(performance.now());
    return this.seen.get(sha);
  }

  close(): void {
    this.watcher.close();
  }

  private drain(at: number): void {
    const fd = openSync(this.path, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (let n; (n = readSync(fd, buf, 0, buf.length, this.read)) > 0; ) {
        this.read += n;
        const lines = (this.partial + buf.toString('utf8', 0, n)).split('\n');
        this.partial = lines.pop()!;
        for (const line of lines) if (line && !this.seen.has(line)) this.seen.set(line, at);
      }
    } finally {
      closeSync(fd);
    }
  }
}

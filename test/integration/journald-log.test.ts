import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const LOGGER = fileURLToPath(new URL('../../dist/src/shared/logger.js', import.meta.url));
const SCRIPT = `const { createLogger } = await import(${JSON.stringify(LOGGER)});
const log = createLogger('agent', 'trace');
log.fatal('f'); log.error({ step: 'health' }, 'e'); log.warn('w'); log.info('i'); log.debug('d'); log.trace('t');`;

/** Runs the real logger in a child whose stdout is a file, as systemd hands a service the journal's stream; `journalStream` computes JOURNAL_STREAM from that file. */
function logTo(journalStream: (dev: bigint, ino: bigint) => string | undefined): string[] {
  const out = join(cleanup.tempDir('pushfleet-journald-'), 'stdout');
  const fd = openSync(out, 'w');
  try {
    const st = statSync(out, { bigint: true });
    const stream = journalStream(st.dev, st.ino);
    const env = { ...process.env, PUSHFLEET_LOG_JSON: '1', JOURNAL_STREAM: stream };
    if (stream === undefined) delete env.JOURNAL_STREAM;
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT], { env, stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
  } finally {
    closeSync(fd);
  }
  return readFileSync(out, 'utf8').trim().split('\n');
}

describe('logs under systemd', () => {
  it('prefix each JSON line with its syslog priority when stdout is the journal stream', () => {
    const lines = logTo((dev, ino) => `${dev}:${ino}`);
    expect(lines.map((l) => l.match(/^<(\d)>\{/)?.[1])).toEqual(['2', '3', '4', '6', '7', '7']);
    // What journald keeps once it strips the prefix is the plain pino line.
    const error = JSON.parse(lines[1]!.slice(3));
    expect(error).toMatchObject({ level: 50, name: 'agent', step: 'health', msg: 'e' });
  });

  it('leaves lines plain when stdout is not the journal stream (inherited JOURNAL_STREAM) or there is none', () => {
    for (const stream of [(dev: bigint, ino: bigint) => `${dev}:${ino + 1n}`, () => undefined]) {
      const lines = logTo(stream);
      expect(lines).toHaveLength(6);
      for (const line of lines) expect(JSON.parse(line)).toHaveProperty('level');
    }
  });
});

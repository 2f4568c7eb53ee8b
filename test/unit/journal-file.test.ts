import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyJournal } from '../../agent/journal.js';
import { JournalFile } from '../../agent/journal-file.js';
import { Cleanup } from '../support/cleanup.js';

describe('JournalFile', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('has no journal before the first save, and reads back what it saved, leaving no temp file', async () => {
    const dir = cleanup.tempDir('pushfleet-journal-');
    const file = new JournalFile(dir, 'web');
    expect(await file.load()).toEqual({ journal: null, problem: null });
    const journal = { ...emptyJournal('web', '/srv/web', null), deployed: { sha: 'a'.repeat(40), ref: 'refs/heads/main', at: 1 } };
    await file.save(journal);
    await file.save({ ...journal, baseline: 'b'.repeat(40) });
    expect(await file.load()).toEqual({ journal: { ...journal, baseline: 'b'.repeat(40) }, problem: null });
    expect(readdirSync(join(dir, 'apps'))).toEqual(['web.json']);
  });

  it('reads a journal written before steps recorded their process group as running none', async () => {
    const dir = cleanup.tempDir('pushfleet-journal-');
    mkdirSync(join(dir, 'apps'));
    const { running: _, ...older } = emptyJournal('web', '/srv/web', 'a'.repeat(40));
    writeFileSync(join(dir, 'apps', 'web.json'), JSON.stringify(older));
    expect(await new JournalFile(dir, 'web').load()).toEqual({ journal: { ...older, running: null }, problem: null });
  });

  it('says why it cannot take a damaged journal', async () => {
    const dir = cleanup.tempDir('pushfleet-journal-');
    mkdirSync(join(dir, 'apps'));
    writeFileSync(join(dir, 'apps', 'web.json'), '{"v":1,');
    expect((await new JournalFile(dir, 'web').load()).problem).toMatch(/web\.json is not JSON/);
    writeFileSync(join(dir, 'apps', 'web.json'), JSON.stringify({ ...emptyJournal('web', '/srv/web', null), deployed: { sha: 'not-a-sha', ref: null, at: 0 } }));
    expect((await new JournalFile(dir, 'web').load()).problem).toMatch(/deployed\.sha: expected a full lower-case hex commit SHA/);
  });

  it('fails a save it cannot make, keeping the previous journal', async () => {
    const dir = cleanup.tempDir('pushfleet-journal-');
    const file = new JournalFile(dir, 'web');
    const journal = emptyJournal('web', '/srv/web', 'a'.repeat(40));
    await file.save(journal);
    // A record too big for its slot makes the file anew through a temp file, which cannot be created.
    mkdirSync(join(dir, 'apps', `.web.json.${process.pid}.tmp`));
    const big = { ...journal, path: `/srv/${'w'.repeat(20_000)}` };
    await expect(file.save(big)).rejects.toThrow(/EISDIR/);
    expect((await file.load()).journal).toEqual(journal);
  });

  it('turns a journal in the JSON of earlier versions into a slot file on its next save, and reads both', async () => {
    const dir = cleanup.tempDir('pushfleet-journal-');
    mkdirSync(join(dir, 'apps'));
    const journal = emptyJournal('web', '/srv/web', 'a'.repeat(40));
    writeFileSync(join(dir, 'apps', 'web.json'), `${JSON.stringify(journal)}\n`);
    const file = new JournalFile(dir, 'web');
    expect((await file.load()).journal).toEqual(journal);
    await file.save({ ...journal, baseline: null });
    expect(readFileSync(file.path, 'utf8')).toMatch(/^\{"pushfleet":"pushfleet-slots\/1"/);
    expect((await new JournalFile(dir, 'web').load()).journal).toEqual({ ...journal, baseline: null });
  });
});

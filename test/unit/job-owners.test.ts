import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { JobOwners } from '../../src/hub/broker/job-owners.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('semaphore job owners', () => {
  it('remember who registered a job, across a reopen of the database (a hub restart)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pushfleet-owners-'));
    dirs.push(dir);
    const file = join(dir, 'hub.sqlite');
    let db = new Database(file);
    new JobOwners(db).claim('ci', 'job-1', 'runner-a', 1);
    // No close: as after kill -9, only what was committed is there.
    db = new Database(file);
    const owners = new JobOwners(db);
    expect(owners.owner('ci', 'job-1')).toBe('runner-a');
    expect(owners.owner('other', 'job-1')).toBeUndefined();
    owners.release('ci', 'job-1');
    expect(owners.owner('ci', 'job-1')).toBeUndefined();
    db.close();
  });
  it('are bounded per owner: a flood of registrations pushes out only the flooder’s own oldest', () => {
    const owners = new JobOwners(new Database(':memory:'), 3);
    owners.claim('ci', 'victim', 'runner-a', 0);
    for (let i = 0; i < 10; i++) owners.claim('ci', `flood-${i}`, 'mallory', i);
    expect(owners.owner('ci', 'victim')).toBe('runner-a');
    expect(['flood-6', 'flood-7', 'flood-8', 'flood-9'].map((u) => owners.owner('ci', u))).toEqual([undefined, 'mallory', 'mallory', 'mallory']);
  });
});

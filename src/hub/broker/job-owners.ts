import type { StateDb } from '../state-db.js';

/** The name a job belongs to when anonymous clients are let in: no account name can contain '*'. */
export const ANONYMOUS_OWNER = '*anonymous*';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS broker_job_owners (channel TEXT NOT NULL, uid TEXT NOT NULL, owner TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (channel, uid));
  CREATE INDEX IF NOT EXISTS broker_job_owners_by_owner ON broker_job_owners (owner);
`;

/**
 * Which broker account registered each semaphore job (channel + uid), so only that account can
 * end it. Written synchronously, before the broker lets the register through (and so before its
 * PUBACK and before the engine sees it): a hub killed at any moment after that still knows the
 * owner. Bounded per owner: an account's own registrations push out its oldest claims, never
 * another account's.
 */
export class JobOwners {
  private readonly st;

  constructor(
    db: StateDb,
    private readonly perOwner = 1000,
  ) {
    db.exec(SCHEMA);
    this.st = {
      get: db.prepare<[string, string], { owner: string }>('SELECT owner FROM broker_job_owners WHERE channel = ? AND uid = ?'),
      put: db.prepare('INSERT OR REPLACE INTO broker_job_owners (channel, uid, owner, at) VALUES (?, ?, ?, ?)'),
      del: db.prepare('DELETE FROM broker_job_owners WHERE channel = ? AND uid = ?'),
      count: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM broker_job_owners WHERE owner = ?'),
      // rowid grows with each claim (INSERT OR REPLACE makes a new row): the oldest claims go first.
      trim: db.prepare(`DELETE FROM broker_job_owners WHERE owner = ? AND rowid <= (SELECT rowid FROM broker_job_owners WHERE owner = ? ORDER BY rowid DESC LIMIT 1 OFFSET ?)`),
    };
  }

  owner(channel: string, uid: string): string | undefined {
    return this.st.get.get(channel, uid)?.owner;
  }

  claim(channel: string, uid: string, owner: string, now: number): void {
    this.st.put.run(channel, uid, owner, now);
    if (this.st.count.get(owner)!.n > this.perOwner) this.st.trim.run(owner, owner, this.perOwner);
  }

  release(channel: string, uid: string): void {
    this.st.del.run(channel, uid);
  }
}

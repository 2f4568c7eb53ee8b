import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { AuditInput } from '../../src/hub/audit/audit-entry.js';
import { auditActions } from '../../src/hub/api/audit-actions.js';
import { sendError } from '../../src/hub/api/api-error.js';
import { createLogger } from '../../src/shared/logger.js';

/** A recorder whose commits the test lets through by hand. */
function recorder() {
  const recorded: { entry: AuditInput; commit(): void; fail(): void }[] = [];
  return {
    recorded,
    record: (entry: AuditInput) => new Promise<void>((commit, fail) => void recorded.push({ entry, commit, fail: () => fail(new Error('disk full')) })),
  };
}

function app(rec: ReturnType<typeof recorder>) {
  const a = express();
  a.use((req, res, next) => {
    if (req.headers.authorization) res.locals.caller = { name: req.headers.authorization, role: 'operator' };
    next();
  });
  a.use(auditActions(rec, createLogger('test', 'silent')));
  a.post('/rollouts/:id/pause', (_req, res) => void res.status(202).json({ ok: true }));
  a.post('/environments/:env/freeze', (_req, res) => sendError(res, 409, 'conflict', 'already frozen'));
  a.get('/rollouts', (_req, res) => void res.json({ items: [] }));
  return a;
}

const settled = (p: Promise<unknown>) => Promise.race([p.then(() => true), new Promise((r) => setTimeout(() => r(false), 150))]);

describe('API actions in the audit log', () => {
  it('holds the answer to an action until its entry is committed, naming the caller and what it was answered', async () => {
    const rec = recorder();
    const answer = request(app(rec)).post('/rollouts/web.prod.0123456789ab/pause').set('authorization', 'alice').then((r) => r);
    expect(await settled(answer)).toBe(false);
    expect(rec.recorded.map((r) => r.entry)).toMatchObject([{ kind: 'action', via: 'api', who: 'alice', identity: 'token', action: 'rollout.pause', target: 'web.prod.0123456789ab', outcome: 'accepted', reason: '202' }]);
    rec.recorded[0]!.commit();
    expect((await answer).status).toBe(202);
  });

  it('records a refusal with its error, still answers when the entry cannot be written, and records neither reads nor calls without a caller', async () => {
    const rec = recorder();
    const a = app(rec);
    const refused = request(a).post('/environments/prod/freeze').set('authorization', 'bob').then((r) => r);
    await new Promise((r) => setTimeout(r, 50));
    rec.recorded[0]!.fail();
    expect((await refused).body).toEqual({ error: 'already frozen', code: 'conflict' });
    expect(rec.recorded[0]!.entry).toMatchObject({ who: 'bob', action: 'environment.freeze', outcome: 'rejected', reason: '409: already frozen' });
    expect((await request(a).get('/rollouts').set('authorization', 'bob')).status).toBe(200);
    expect((await request(a).post('/rollouts/x/pause')).status).toBe(202);
    expect(rec.recorded).toHaveLength(1);
  });
});

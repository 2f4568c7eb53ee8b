import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/hub/audit/audit-log.js';
import { ANSWER_WITHIN_MS, MqttActionAudit } from '../../src/hub/audit/mqtt-action-audit.js';
import { describeRequest } from '../../src/hub/audit/operator-requests.js';
import { RequestPublishers } from '../../src/hub/broker/request-publishers.js';
import { TickBatch } from '../../src/hub/tick-batch.js';
import { createLogger } from '../../src/shared/logger.js';
import { ManualClock } from '../support/manual-clock.js';

const CONTROL = 'pushfleet/rollouts/control';
const request = (op: Record<string, unknown>, requestId = 'req-00000001', by = 'claimed-name') => Buffer.from(JSON.stringify({ v: 1, requestId, by, ...op }));
const reply = (ok: boolean, error: string | null = null) => JSON.stringify({ v: 1, requestId: 'req-00000001', ok, error });
const ops = { name: 'ops', role: 'operator' } as const;

function setup(brokerNamesPublishers = true) {
  const db = new Database(':memory:');
  const clock = new ManualClock(Date.parse('2026-12-01T10:00:00Z'));
  const audit = new AuditLog(db, new TickBatch(db), { maxEntries: 1000, maxAgeDays: 30, now: clock.now });
  const publishers = new RequestPublishers();
  const engine = new MqttActionAudit({ audit, clock, log: createLogger('test', 'silent'), publishers, brokerNamesPublishers });
  const entries = () => audit.list({ offset: 0, limit: 100 }).items;
  return { engine, publishers, clock, entries };
}

describe('describeRequest', () => {
  it('names each audited operator request and skips reads and malformed ones', () => {
    const sha = 'c'.repeat(40);
    expect(describeRequest(CONTROL, request({ op: 'abort', id: 'web.prod.0123456789ab' }))).toMatchObject({ action: 'rollout.abort', target: 'web.prod.0123456789ab', replyTopic: 'pushfleet/rollouts/replies/req-00000001' });
    expect(describeRequest(CONTROL, request({ op: 'pin', agent: 'web-1', app: 'site', sha }))).toMatchObject({ action: 'agent.pin', target: `web-1/site@${sha.slice(0, 12)}` });
    expect(describeRequest(CONTROL, request({ op: 'unfreeze', env: 'prod' }))).toMatchObject({ action: 'environment.unfreeze', target: 'prod' });
    expect(describeRequest('pushfleet/jobs/request', request({ op: 'trigger', job: 'backup', payload: '' }))).toMatchObject({ action: 'job.trigger', target: 'backup', replyTopic: 'pushfleet/jobs/replies/req-00000001' });
    expect(describeRequest('pushfleet/services/request', request({ op: 'rm', name: 'sensor-1' }))).toMatchObject({ action: 'service.remove', target: 'sensor-1' });
    expect(describeRequest('pushfleet/agents/web-1/retry', request({ app: 'site', at: '2026-12-01T10:00:00.000Z' }))).toMatchObject({ action: 'app.retry', target: 'web-1/site', replyTopic: null });
    expect(describeRequest(CONTROL, request({ op: 'list' }))).toBeNull();
    expect(describeRequest('pushfleet/jobs/request', request({ op: 'runs' }))).toBeNull();
    expect(describeRequest(CONTROL, Buffer.from('{not json'))).toBeNull();
    expect(describeRequest(CONTROL, request({ op: 'pause', id: 'no id' }))).toBeNull();
  });
});

describe('MqttActionAudit', () => {
  it('records a request with the account the broker saw publish it, once the engine answers, and holds the answer until the entry is committed', async () => {
    const { engine, publishers, entries } = setup();
    const payload = request({ op: 'pause', id: 'web.prod.0123456789ab' });
    publishers.noteAccepted(ops, '10.1.2.3', CONTROL, payload);
    engine.handle(CONTROL, payload);
    expect(engine.beforePublish('pushfleet/rollouts/state', '{}')).toBeUndefined();
    const held = engine.beforePublish('pushfleet/rollouts/replies/req-00000001', reply(false, 'rollout web.prod.0123456789ab already ended'));
    expect(held).toBeInstanceOf(Promise);
    expect(entries()).toEqual([]);
    await held;
    expect(entries()).toMatchObject([{ kind: 'action', via: 'mqtt', who: 'ops', identity: 'mqtt-account', address: '10.1.2.3', action: 'rollout.pause', outcome: 'rejected', reason: 'rollout web.prod.0123456789ab already ended' }]);
  });

  it("skips the hub's own requests (the API's, recorded there), and with the embedded broker one its door never saw", async () => {
    const { engine, publishers, entries, clock } = setup();
    const own = request({ op: 'freeze', env: 'prod' }, 'req-own00001');
    expect(engine.beforePublish(CONTROL, own.toString())).toBeUndefined();
    engine.handle(CONTROL, own);
    engine.handle(CONTROL, request({ op: 'freeze', env: 'prod' }, 'req-bypass01'));
    clock.advance(ANSWER_WITHIN_MS * 2);
    publishers.noteAccepted(ops, '10.1.2.3', CONTROL, request({ op: 'unfreeze', env: 'prod' }));
    engine.handle(CONTROL, request({ op: 'unfreeze', env: 'prod' }));
    await engine.beforePublish('pushfleet/rollouts/replies/req-00000001', reply(true));
    expect(entries().map((e) => [e.who, e.action, e.outcome])).toEqual([['ops', 'environment.unfreeze', 'accepted']]);
  });

  it('records a push from `pushfleet notify` as a delivery with what became of it', async () => {
    const { engine, publishers, entries } = setup();
    const push = { v: 1, deliveryId: 'hook-7', source: 'post-receive', repo: 'acme/web', ref: 'refs/heads/main', refType: 'branch', branch: 'main', tag: null, before: '0'.repeat(40), after: 'd'.repeat(40), created: false, deleted: false, forced: false, pusher: { name: 'ada', email: null }, headCommit: null, cloneUrl: '/srv/git/web.git', receivedAt: '2026-12-01T10:00:00.000Z' };
    const payload = Buffer.from(JSON.stringify({ v: 1, requestId: 'req-00000001', push }));
    expect(describeRequest('pushfleet/notify/request', payload), 'a push the schema takes').not.toBeNull();
    publishers.noteAccepted({ name: 'git-server', role: 'operator' }, '10.9.9.9', 'pushfleet/notify/request', payload);
    engine.handle('pushfleet/notify/request', payload);
    await engine.beforePublish('pushfleet/notify/replies/req-00000001', JSON.stringify({ v: 1, requestId: 'req-00000001', state: 'duplicate', detail: 'an earlier request with this delivery id was published' }));
    expect(entries()).toMatchObject([{ kind: 'delivery', via: 'mqtt', who: 'git-server', identity: 'mqtt-account', action: 'delivery', target: 'hook-7', outcome: 'duplicate', reason: `acme/web refs/heads/main ${'d'.repeat(12)}: duplicate (an earlier request with this delivery id was published)` }]);
  });

  it('with an external broker records who the request claims to be from, as claimed', async () => {
    const { engine, entries } = setup(false);
    engine.handle(CONTROL, request({ op: 'freeze', env: 'prod' }));
    await engine.beforePublish('pushfleet/rollouts/replies/req-00000001', reply(true));
    expect(entries()).toMatchObject([{ who: 'claimed-name', identity: 'claimed', address: null, outcome: 'accepted' }]);
  });

  it('records a request no engine answered as failed after ANSWER_WITHIN_MS, and a retry (the agent answers) at once', async () => {
    const { engine, publishers, entries, clock } = setup();
    await engine.start();
    const trigger = request({ op: 'trigger', job: 'backup', payload: '' });
    publishers.noteAccepted(ops, '10.1.2.3', 'pushfleet/jobs/request', trigger);
    engine.handle('pushfleet/jobs/request', trigger);
    const retry = request({ app: 'site', at: '2026-12-01T10:00:00.000Z' }, 'req-retry001');
    publishers.noteAccepted(ops, '10.1.2.3', 'pushfleet/agents/web-1/retry', retry);
    engine.handle('pushfleet/agents/web-1/retry', retry);
    clock.advance(ANSWER_WITHIN_MS + ANSWER_WITHIN_MS / 3);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(entries().map((e) => [e.action, e.outcome, e.reason])).toEqual([
      ['app.retry', 'accepted', 'sent to the agent'],
      ['job.trigger', 'failed', 'no engine answered within 30 s (is it enabled?)'],
    ]);
    await engine.stop();
  });
});

describe('RequestPublishers', () => {
  it('attributes a request only to whoever published those exact bytes, once per copy, within its bound', () => {
    const publishers = new RequestPublishers(2);
    const mine = request({ op: 'freeze', env: 'prod' });
    const theirs = request({ op: 'freeze', env: 'staging' });
    publishers.noteAccepted(ops, '10.0.0.1', CONTROL, mine);
    publishers.noteAccepted({ name: 'eve', role: 'operator' }, '10.0.0.2', CONTROL, theirs);
    publishers.noteAccepted(ops, '10.0.0.1', 'pushfleet/agents/a/status', mine);
    expect(publishers.take(CONTROL, mine)).toEqual({ name: 'ops', role: 'operator', address: '10.0.0.1' });
    expect(publishers.take(CONTROL, mine)).toBeUndefined();
    expect(publishers.take(CONTROL, theirs)?.name).toBe('eve');
    for (let i = 0; i < 3; i++) publishers.noteAccepted(ops, '10.0.0.1', CONTROL, request({ op: 'freeze', env: `e${i}` }));
    expect(publishers.take(CONTROL, request({ op: 'freeze', env: 'e0' }))).toBeUndefined();
    expect(publishers.take(CONTROL, request({ op: 'freeze', env: 'e2' }))?.name).toBe('ops');
  });
});

import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { EngineContext } from '../../src/hub/engines/engine.js';
import { NotifyRequests } from '../../src/hub/engines/notify/notify-engine.js';
import { TickBatch } from '../../src/hub/tick-batch.js';
import { DeliveryLog } from '../../src/hub/webhook/deliveries.js';
import { SCHEMA_VERSION, ZERO_SHA, type PushMessage } from '../../src/shared/messages.js';
import { NotifyReply } from '../../src/shared/contract/notify-messages.js';
import { createLogger } from '../../src/shared/logger.js';
import { NOTIFY_REQUEST } from '../../src/shared/topics.js';
import { ManualClock } from '../support/manual-clock.js';

const push = (deliveryId: string): PushMessage => ({
  v: SCHEMA_VERSION, deliveryId, source: 'post-receive', repo: 'acme/web', ref: 'refs/heads/main', refType: 'branch', branch: 'main', tag: null,
  before: ZERO_SHA, after: 'a'.repeat(40), created: true, deleted: false, forced: false, pusher: { name: 'ada', email: null }, headCommit: null, cloneUrl: '/srv/git/web.git', receivedAt: '2000-01-01T00:00:00.000Z',
});

function setup(opts: { connected?: boolean; ack?: boolean } = {}) {
  const db = new Database(':memory:');
  const clock = new ManualClock(Date.parse('2026-12-01T10:00:00Z'));
  const replies: { topic: string; reply: NotifyReply }[] = [];
  const sent: PushMessage[] = [];
  const ctx: EngineContext = {
    publisher: { publish: async (topic, payload) => void replies.push({ topic, reply: NotifyReply.parse(JSON.parse(payload)) }) },
    db, clock, log: createLogger('test', 'silent'),
  };
  const engine = new NotifyRequests(ctx, {
    deliveries: new DeliveryLog(db, new TickBatch(db)),
    sendPush: (p) => {
      sent.push(p);
      return opts.ack === false ? new Promise(() => undefined) : Promise.resolve();
    },
    isConnected: () => opts.connected ?? true,
    timeoutMs: 20,
    maxPending: 10,
  });
  const request = (requestId: string, deliveryId: string) => engine.handle(NOTIFY_REQUEST, Buffer.from(JSON.stringify({ v: SCHEMA_VERSION, requestId, push: push(deliveryId) })));
  return { engine, replies, sent, request, clock };
}

describe('notify requests to the hub', () => {
  it('publishes a push once, dated by the hub, and answers published, then duplicate for the same delivery', async () => {
    const { replies, sent, request, clock } = setup();
    await request('r1', 'd1');
    await request('r2', 'd1');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.receivedAt).toBe(new Date(clock.now()).toISOString());
    expect(replies.map((r) => [r.topic, r.reply.state])).toEqual([['pushfleet/notify/replies/r1', 'published'], ['pushfleet/notify/replies/r2', 'duplicate']]);
  });

  it('answers not-published while the broker is away, and in-doubt when it never acknowledges', async () => {
    const away = setup({ connected: false });
    await away.request('r1', 'd1');
    expect(away.sent).toEqual([]);
    expect(away.replies[0]!.reply.state).toBe('not-published');
    const stalled = setup({ ack: false });
    await stalled.request('r1', 'd1');
    expect(stalled.replies[0]!.reply.state).toBe('in-doubt');
  });

  it('ignores a malformed request: no publish, no reply', async () => {
    const { engine, replies, sent } = setup();
    await engine.handle(NOTIFY_REQUEST, Buffer.from('{"v":1,"requestId":"x/../y","push":{}}'));
    await engine.handle(NOTIFY_REQUEST, Buffer.from('not json'));
    expect([replies, sent]).toEqual([[], []]);
  });
});

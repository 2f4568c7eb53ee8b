import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Fleet } from '../../src/hub/engines/orchestrator/fleet.js';
import { SemaphoreConfig } from '../../src/hub/engines/semaphore/config.js';
import { SemaphoreEngine } from '../../src/hub/engines/semaphore/semaphore-engine.js';
import { TableBound } from '../../src/hub/engines/table-bound.js';
import { collectAgentMessage, emptySnapshot } from '../../src/shared/fleet.js';
import type { Logger } from '../../src/shared/logger.js';
import { SCHEMA_VERSION } from '../../src/shared/messages.js';
import { agentStatusTopic, appStateTopic, rolloutChannel } from '../../src/shared/topics.js';
import { fakeAppState, fakeStatus } from '../support/fake-agents.js';
import { ManualClock } from '../support/manual-clock.js';

/** A logger keeping its warn lines, for asserting what a full table says. */
function recordingLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = { warn: (obj: Record<string, unknown>, msg: string) => lines.push({ ...obj, msg }), info: () => undefined, debug: () => undefined, child: () => log } as unknown as Logger;
  return { log, lines };
}

const status = (agent: string) => fakeStatus(agent);
const app = fakeAppState;

describe('TableBound', () => {
  it('refuses past its limit and says so at once, then at most once a minute with the count', () => {
    const clock = new ManualClock();
    const { log, lines } = recordingLog();
    const bound = new TableBound({ log, clock }, 'widgets', 'engines.x.maxWidgets', 2);
    expect(bound.admits(1, 'w1')).toBe(true);
    for (let i = 0; i < 1000; i++) expect(bound.admits(2, `w${i}`)).toBe(false);
    expect(lines).toEqual([{ table: 'widgets', limit: 2, refused: 1, last: 'w0', msg: 'widgets: full at 2, new entries refused (engines.x.maxWidgets raises it)' }]);
    clock.advance(60_000);
    bound.admits(5, 'late');
    expect(lines.at(-1)).toMatchObject({ refused: 1000, last: 'late' });
    expect(lines).toHaveLength(2);
  });
});

describe('fleet snapshot with a bound', () => {
  it('keeps following the agents and apps it has, and ignores new ones past the bound', () => {
    const clock = new ManualClock();
    const { log } = recordingLog();
    const agents = new TableBound({ log, clock }, 'agents', 'k', 3);
    const apps = new TableBound({ log, clock }, 'apps', 'k', 2);
    const fleet = emptySnapshot();
    const bound = (table: 'agents' | 'apps', size: number, entry: string) => (table === 'agents' ? agents : apps).admits(size, entry);
    for (let i = 0; i < 100; i++) collectAgentMessage(fleet, agentStatusTopic(`a${i}`), status(`a${i}`), bound);
    expect([...fleet.agents.keys()]).toEqual(['a0', 'a1', 'a2']);
    for (let i = 0; i < 10; i++) collectAgentMessage(fleet, appStateTopic('a1', `app${i}`), app('a1', `app${i}`), bound);
    expect([...fleet.agents.get('a1')!.apps.keys()]).toEqual(['app0', 'app1']);
    // Known entries still update; a malformed or empty message creates nothing.
    expect(collectAgentMessage(fleet, appStateTopic('a1', 'app1'), app('a1', 'app1'), bound)).toEqual({ agent: 'a1', kind: 'app', app: 'app1' });
    expect(collectAgentMessage(fleet, agentStatusTopic('a0'), status('a0'), bound)).toEqual({ agent: 'a0', kind: 'status' });
    const unbounded = emptySnapshot();
    collectAgentMessage(unbounded, agentStatusTopic('x'), Buffer.from('{'));
    collectAgentMessage(unbounded, agentStatusTopic('y'), Buffer.alloc(0));
    expect(unbounded.agents.size).toBe(0);
  });

  it('orchestrator fleet: follows only agents that are online or nodes, up to its bound', () => {
    let admitted = 0;
    const fleet = new Fleet((size) => size < 2 && ++admitted > 0);
    fleet.setStatus('gone', false, {});
    fleet.setInfo('nothing', null);
    for (const id of ['n1', 'n2', 'n3']) fleet.setStatus(id, true, { role: 'x' });
    for (const id of ['n1', 'n2', 'n3']) fleet.setInfo(id, { v: SCHEMA_VERSION, agent: id, seedNode: id, actions: ['SLEEP'], clock: null, at: 0 });
    expect(admitted).toBe(2);
    expect(fleet.resolve([{ role: 'x' }], 'SLEEP')).toEqual({ nodes: ['n1', 'n2'], errors: [] });
    expect(fleet.resolve(['n3'], 'SLEEP').errors).toEqual(['agent n3 is not online']);
  });
});

describe('semaphore bounds', () => {
  async function engine(config: Record<string, unknown>) {
    const sent: { topic: string; payload: string }[] = [];
    const publisher = { publish: async (topic: string, payload: string) => void sent.push({ topic, payload }) };
    const clock = new ManualClock(1_000_000);
    const db = new Database(':memory:');
    const e = new SemaphoreEngine({ publisher, db, clock, log: recordingLog().log }, SemaphoreConfig.parse(config));
    e.claimChannels('pushfleet-rollout.', { maxConcurrentJobs: 1, timeoutOffset: 0, quotas: [] }, { registered: () => undefined, granted: () => undefined, ended: () => undefined });
    await e.start();
    const send = (topic: string, payload: string) => e.handle(topic, Buffer.from(payload));
    const register = (channel: string, uid: string, token?: string) => send(`coordinosaur/${channel}/register`, JSON.stringify({ uid, timeout: 60, ...(token && { token }) }));
    const errors = () => sent.filter((s) => s.topic.endsWith('/error')).map((s) => JSON.parse(s.payload) as { code: string; error: string });
    const rows = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return { e, sent, send, register, errors, rows, clock };
  }

  it('opens no channel past maxChannels, counting rollout channels apart, and serves those it has', async () => {
    const s = await engine({ maxChannels: 3 });
    s.register('genuine', 'job-1');
    for (let i = 0; i < 50; i++) s.register(`flood-${i}`, 'x');
    expect(s.rows('semaphore_jobs')).toBe(3);
    expect(s.errors().filter((e) => e.code === 'table-full')).toHaveLength(48);
    expect(s.errors()[0]!.error).toMatch(/semaphore channels holding jobs: full at 3 \(engines\.semaphore\.maxChannels\)/);
    // A rollout channel still opens, and the genuine channel still takes and grants jobs.
    s.register(rolloutChannel('web.prod.0123456789ab'), 'h1');
    expect(s.sent.some((m) => m.topic === `coordinosaur/${rolloutChannel('web.prod.0123456789ab')}/go/h1`)).toBe(true);
    s.register('genuine', 'job-2');
    s.send('coordinosaur/genuine/finished', 'job-1');
    expect(s.sent.some((m) => m.topic === 'coordinosaur/genuine/go/job-2' && m.payload === 'job-2')).toBe(true);
    // A channel that emptied is closed, and frees its place.
    for (let i = 0; i < 2; i++) s.send(`coordinosaur/flood-${i}/finished`, 'x');
    s.register('late', 'y');
    expect(s.sent.at(-1)).toEqual({ topic: 'coordinosaur/late/go/y', payload: 'y' });
    await s.e.stop();
  });

  it('takes no job past maxJobsPerChannel', async () => {
    const s = await engine({ maxJobsPerChannel: 5 });
    for (let i = 0; i < 20; i++) s.register('c', `j${i}`);
    expect(s.rows('semaphore_jobs')).toBe(5);
    expect(s.errors().filter((e) => e.code === 'table-full')).toHaveLength(15);
    await s.e.stop();
  });

  it('keeps at most maxEndedJobs ended jobs, forgetting the oldest first', async () => {
    const s = await engine({ maxEndedJobs: 4, maxConcurrentJobs: 100 });
    for (let i = 0; i < 10; i++) {
      s.register('c', `j${i}`, `t${i}`);
      s.send('coordinosaur/c/finished', `j${i}`);
    }
    expect(s.rows('semaphore_ended')).toBe(4);
    // The newest are still recognised: a late copy of j9's register changes nothing.
    const before = s.sent.length;
    s.register('c', 'j9', 't9');
    expect(s.sent.length).toBe(before);
    await s.e.stop();
  });

  it('keeps concurrency overrides to maxChannels, and rollout channel limits to the hub', async () => {
    const s = await engine({ maxChannels: 2 });
    for (let i = 0; i < 5; i++) s.send(`coordinosaur/c${i}/concurrency/set`, '3');
    expect(s.rows('semaphore_concurrency')).toBe(2);
    s.send('coordinosaur/c0/concurrency/set', '4');
    s.send(`coordinosaur/${rolloutChannel('web.prod.0123456789ab')}/concurrency/set`, '10');
    expect(s.errors().map((e) => e.code)).toEqual(['table-full', 'table-full', 'table-full', 'not-allowed']);
    expect(s.e.info(rolloutChannel('web.prod.0123456789ab')).maxConcurrentJobs).toBe(1);
    await s.e.stop();
  });
});

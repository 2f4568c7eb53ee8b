import { describe, expect, it } from 'vitest';
import type { PlannedRollout } from '../../src/hub/engines/rollouts/plan.js';
import { Rollout, type RolloutEffect } from '../../src/hub/engines/rollouts/rollout.js';
import { decode } from '../../src/shared/messages.js';
import { applyRolloutEvent, countHosts, RolloutSnapshot, type RolloutHostState, type RolloutPolicy } from '../../src/shared/contract/rollout-messages.js';
import { rolloutId } from '../../src/shared/topics.js';

const SHA = 'a'.repeat(40);
const OLD = 'b'.repeat(40);
const T0 = Date.parse('2025-01-01T00:00:00Z');

/** A rollout of `hosts` (h1, h2, …) on web × prod, with a policy close to the built-in one. */
function rollout(hosts: number, policy: Partial<RolloutPolicy> = {}, frozen = false): Rollout {
  const plan: PlannedRollout = {
    id: rolloutId('web', 'prod', SHA),
    app: 'web',
    env: 'prod',
    sha: SHA,
    frozen,
    policy: { batchSize: 2, canary: 1, maxUnavailable: 2, hostTimeout: 60, failureThreshold: 2, onAbort: 'stop', ...policy },
    targets: Array.from({ length: hosts }, (_, i) => ({ agent: `h${i + 1}`, fromSha: OLD })),
  };
  return Rollout.create(plan, { repo: 'acme/web', ref: 'refs/heads/main', deliveryId: 'd1', pusher: 'alice' }, T0);
}

const states = (r: Rollout): Record<string, RolloutHostState> => Object.fromEntries(r.snap.hosts.map((h) => [h.agent, h.state]));
const evicted = (effects: RolloutEffect[]) => effects.flatMap((e) => (e.kind === 'evict' ? [e.agent] : []));
/** The events among `effects`, without the fields each carries for readers (seq, host copy). */
const events = (effects: RolloutEffect[]) => effects.flatMap((e) => (e.kind === 'event' ? [{ agent: e.event.agent, state: e.event.state, detail: e.event.detail }] : []));
const rollbacks = (effects: RolloutEffect[]) => effects.flatMap((e) => (e.kind === 'rollback' ? [[e.agent, e.sha]] : []));

/** Grants then finishes `agent` (the two halves of one host's turn). */
function succeed(r: Rollout, agent: string, at = T0): void {
  r.granted(agent, OLD, at);
  r.succeeded(agent, at);
}

describe('Rollout.create', () => {
  it('starts running with every target pending and a valid snapshot', () => {
    const r = rollout(3);
    expect(r.snap).toMatchObject({ id: 'web.prod.aaaaaaaaaaaa', status: 'running', reason: null, endedAt: null, pusher: 'alice' });
    expect(states(r)).toEqual({ h1: 'pending', h2: 'pending', h3: 'pending' });
    expect(events(r.takeEffects())).toEqual([{ agent: null, state: 'running', detail: '3 hosts, 2 at a time after 1 canary' }]);
    expect(decode(RolloutSnapshot, JSON.stringify(r.snap)).ok).toBe(true);
    expect(r.ended).toBe(false);
  });

  it('starts frozen in a frozen environment, admitting nobody', () => {
    const r = rollout(3, {}, true);
    expect(r.snap.status).toBe('frozen');
    expect(r.snap.reason).toContain('frozen');
    expect(r.admission()).toBe(0);
    r.queued('h1', OLD, T0);
    expect(states(r).h1).toBe('queued');
    r.unfreeze(T0);
    expect(r.snap.status).toBe('running');
    expect(r.admission()).toBe(1);
  });
});

describe('Rollout admission', () => {
  it('admits the canaries first, then min(batchSize, maxUnavailable − down)', () => {
    const r = rollout(6, { canary: 2, batchSize: 3, maxUnavailable: 4, failureThreshold: 5 });
    expect(r.admission()).toBe(2);
    r.granted('h1', OLD, T0);
    r.granted('h2', OLD, T0);
    expect(r.snap.hosts.filter((h) => h.canary).map((h) => h.agent)).toEqual(['h1', 'h2']);
    expect(r.admission()).toBe(2);
    r.succeeded('h1', T0);
    // One canary still out: the limit only lets it finish.
    expect(r.admission()).toBe(1);
    r.succeeded('h2', T0);
    expect(r.admission()).toBe(3);
    // Later hosts are not canaries.
    r.granted('h3', OLD, T0);
    expect(r.host('h3')!.canary).toBe(false);
    // A host down (failed, not back on its SHA) takes a place of maxUnavailable.
    r.failed('h3', 'failed', 'health: 500', false, T0);
    expect(r.host('h3')!.down).toBe(true);
    expect(r.admission()).toBe(3);
    r.granted('h4', OLD, T0);
    r.failed('h4', 'failed', 'health: 500', false, T0);
    expect(r.admission()).toBe(2);
    // A failed host that rolled itself back is not down.
    r.granted('h5', OLD, T0);
    r.failed('h5', 'failed', 'restart: exit 1', true, T0);
    expect(r.host('h5')!.down).toBe(false);
    expect(r.admission()).toBe(2);
  });

  it('admits nobody while paused or frozen, and again after resume or unfreeze', () => {
    const r = rollout(4, { canary: 0, batchSize: 2 });
    expect(r.admission()).toBe(2);
    expect(r.pause(T0)).toBeNull();
    expect(r.snap).toMatchObject({ status: 'paused', reason: 'paused by an operator' });
    expect(r.admission()).toBe(0);
    expect(r.pause(T0)).toMatch(/is paused, not running/);
    expect(r.resume(T0)).toBeNull();
    expect(r.snap.status).toBe('running');
    expect(r.admission()).toBe(2);
    expect(r.resume(T0)).toMatch(/is running, not paused/);

    r.freeze(T0);
    expect(r.snap.status).toBe('frozen');
    expect(r.admission()).toBe(0);
    expect(r.resume(T0)).toMatch(/environment prod is frozen/);
    expect(r.pause(T0)).toMatch(/is frozen, not running/);
    r.unfreeze(T0);
    expect(r.snap.status).toBe('running');
    expect(r.admission()).toBe(2);
  });

  it('freezes a paused rollout too, but not an ended one', () => {
    const r = rollout(1, { canary: 0 });
    r.pause(T0);
    r.freeze(T0);
    expect(r.snap.status).toBe('frozen');
    r.unfreeze(T0);
    succeed(r, 'h1');
    expect(r.snap.status).toBe('succeeded');
    r.freeze(T0);
    r.unfreeze(T0);
    expect(r.snap.status).toBe('succeeded');
  });

  it('lets updating hosts finish while paused, and ends when the last one does', () => {
    const r = rollout(2, { canary: 0 });
    r.granted('h1', OLD, T0);
    r.granted('h2', OLD, T0);
    r.pause(T0);
    r.succeeded('h1', T0);
    expect(r.snap.status).toBe('paused');
    r.succeeded('h2', T0);
    expect(r.snap.status).toBe('succeeded');
  });
});

describe('Rollout failures', () => {
  it('aborts at once when a canary fails, skipping and evicting everyone else', () => {
    const r = rollout(4, { canary: 1, failureThreshold: 3 });
    r.queued('h2', OLD, T0);
    r.granted('h1', OLD, T0);
    r.takeEffects();
    r.failed('h1', 'failed', 'health: 503', true, T0 + 5000);
    expect(r.snap.status).toBe('aborted');
    expect(r.snap.reason).toBe('canary h1 failed: health: 503');
    expect(r.snap.endedAt).toBe(new Date(T0 + 5000).toISOString());
    expect(states(r)).toEqual({ h1: 'failed', h2: 'skipped', h3: 'skipped', h4: 'skipped' });
    expect(r.host('h2')!.error).toBe(r.snap.reason);
    const effects = r.takeEffects();
    expect(evicted(effects)).toEqual(['h2']);
    expect(events(effects)).toContainEqual({ agent: null, state: 'aborted', detail: 'canary h1 failed: health: 503' });
    expect(r.admission()).toBe(0);
    expect(r.abort(T0, 'again')).toMatch(/already aborted/);
  });

  it('aborts when failures reach failureThreshold; updating hosts still finish', () => {
    const r = rollout(6, { canary: 0, batchSize: 3, maxUnavailable: 3, failureThreshold: 2 });
    r.granted('h1', OLD, T0);
    r.granted('h2', OLD, T0);
    r.granted('h3', OLD, T0);
    r.queued('h4', OLD, T0);
    r.failed('h1', 'failed', 'update: exit 2', true, T0);
    expect(r.snap.status).toBe('running');
    r.takeEffects();
    r.failed('h2', 'timed-out', 'no result within 60 s', false, T0);
    expect(r.snap.status).toBe('aborted');
    expect(r.snap.reason).toBe('2 host(s) failed (threshold 2); last: h2: no result within 60 s');
    expect(states(r)).toEqual({ h1: 'failed', h2: 'timed-out', h3: 'updating', h4: 'skipped', h5: 'skipped', h6: 'skipped' });
    const effects = r.takeEffects();
    expect(evicted(effects)).toEqual(['h4']);
    expect(rollbacks(effects)).toEqual([]);
    r.succeeded('h3', T0);
    expect(states(r).h3).toBe('succeeded');
    expect(r.snap.status).toBe('aborted');
    expect(rollbacks(r.takeEffects())).toEqual([]);
  });

  it('aborts when maxUnavailable hosts are down and nobody is updating', () => {
    const r = rollout(3, { canary: 0, batchSize: 1, maxUnavailable: 1, failureThreshold: 3 });
    r.granted('h1', OLD, T0);
    r.failed('h1', 'failed', 'checkout: dirty', false, T0);
    expect(r.snap.status).toBe('aborted');
    expect(r.snap.reason).toBe('1 host(s) down: maxUnavailable (1) reached');
    expect(states(r)).toEqual({ h1: 'failed', h2: 'skipped', h3: 'skipped' });
  });

  it('ends failed when every host is done and failures stayed under the threshold', () => {
    const r = rollout(3, { canary: 0, batchSize: 3, maxUnavailable: 3, failureThreshold: 2 });
    for (const h of ['h1', 'h2', 'h3']) r.granted(h, OLD, T0);
    r.succeeded('h1', T0);
    r.failed('h2', 'failed', 'restart: exit 1', true, T0);
    expect(r.snap.status).toBe('running');
    r.succeeded('h3', T0 + 1000);
    expect(r.snap).toMatchObject({ status: 'failed', reason: '1 of 3 hosts failed', endedAt: new Date(T0 + 1000).toISOString() });
  });

  it('ignores results from hosts that are not updating', () => {
    const r = rollout(2, { canary: 0 });
    r.succeeded('h1', T0);
    r.failed('h2', 'failed', 'x', false, T0);
    r.failed('nobody', 'failed', 'x', false, T0);
    expect(states(r)).toEqual({ h1: 'pending', h2: 'pending' });
    expect(r.snap.status).toBe('running');
  });
});

describe('Rollout abort with onAbort: rollback', () => {
  it('sends succeeded hosts back, and hosts that succeed after the abort too', () => {
    const r = rollout(4, { canary: 0, batchSize: 3, maxUnavailable: 3, failureThreshold: 1, onAbort: 'rollback' });
    succeed(r, 'h1');
    r.granted('h2', OLD, T0);
    r.granted('h3', OLD, T0);
    r.takeEffects();
    r.failed('h3', 'failed', 'health: 500', true, T0);
    expect(r.snap.status).toBe('aborted');
    let effects = r.takeEffects();
    expect(rollbacks(effects)).toEqual([['h1', OLD]]);
    expect(events(effects)).toContainEqual({ agent: 'h1', state: 'rolled-back', detail: 'sent back to bbbbbbbb' });
    expect(states(r)).toEqual({ h1: 'rolled-back', h2: 'updating', h3: 'failed', h4: 'skipped' });
    r.succeeded('h2', T0);
    effects = r.takeEffects();
    expect(rollbacks(effects)).toEqual([['h2', OLD]]);
    expect(states(r).h2).toBe('rolled-back');
  });

  it('rolls back on an operator abort as well, except hosts without a previous SHA', () => {
    const r = rollout(3, { canary: 0, batchSize: 3, maxUnavailable: 3, onAbort: 'rollback' });
    succeed(r, 'h1');
    r.granted('new', null, T0);
    r.succeeded('new', T0);
    r.takeEffects();
    expect(r.abort(T0, 'aborted by bob')).toBeNull();
    expect(r.snap).toMatchObject({ status: 'aborted', reason: 'aborted by bob' });
    expect(rollbacks(r.takeEffects())).toEqual([['h1', OLD]]);
    expect(states(r)).toMatchObject({ h1: 'rolled-back', new: 'succeeded', h2: 'skipped', h3: 'skipped' });
  });

  it('does not roll back with onAbort: stop', () => {
    const r = rollout(3, { canary: 0, onAbort: 'stop' });
    succeed(r, 'h1');
    r.takeEffects();
    r.abort(T0, 'stop it');
    expect(rollbacks(r.takeEffects())).toEqual([]);
    expect(states(r).h1).toBe('succeeded');
  });
});

describe('Rollout supersede', () => {
  it('skips hosts that have not started, evicts queued ones, lets updating ones finish', () => {
    const r = rollout(4, { canary: 0 });
    r.granted('h1', OLD, T0);
    r.queued('h2', OLD, T0);
    r.offline('h3', T0);
    r.takeEffects();
    r.supersede(T0 + 1, 'web.prod.cccccccccccc');
    expect(r.snap).toMatchObject({ status: 'superseded', reason: 'superseded by web.prod.cccccccccccc', endedAt: new Date(T0 + 1).toISOString() });
    expect(states(r)).toEqual({ h1: 'updating', h2: 'skipped', h3: 'skipped', h4: 'skipped' });
    expect(evicted(r.takeEffects())).toEqual(['h2']);
    expect(r.ended).toBe(true);
    expect(r.admission()).toBe(0);
    r.succeeded('h1', T0);
    expect(states(r).h1).toBe('succeeded');
    expect(r.snap.status).toBe('superseded');
  });

  it('does not supersede an aborted rollout, and turns away hosts that register late', () => {
    const r = rollout(2, { canary: 0 });
    r.abort(T0, 'no');
    r.supersede(T0, 'other');
    expect(r.snap.status).toBe('aborted');
    r.takeEffects();
    r.queued('h9', OLD, T0);
    expect(evicted(r.takeEffects())).toEqual(['h9']);
    expect(r.host('h9')).toBeUndefined();
    expect(r.snap.status).toBe('aborted');
  });

  it('turns away a host the cancelled rollout grants anyway (it never should)', () => {
    const r = rollout(2, { canary: 0 });
    r.supersede(T0, 'other');
    r.takeEffects();
    r.granted('h1', OLD, T0);
    expect(evicted(r.takeEffects())).toEqual(['h1']);
    expect(states(r).h1).toBe('skipped');
    expect(r.snap.status).toBe('superseded');
  });
});

describe('Rollout hosts coming and going', () => {
  it('reopens a succeeded rollout for a late joiner, and ends it again when it is done', () => {
    const r = rollout(1, { canary: 1 });
    succeed(r, 'h1');
    expect(r.snap.status).toBe('succeeded');
    r.takeEffects();
    r.queued('late', OLD, T0 + 10);
    expect(r.snap).toMatchObject({ status: 'running', endedAt: null });
    expect(r.host('late')).toMatchObject({ state: 'queued', fromSha: OLD });
    expect(events(r.takeEffects())).toContainEqual({ agent: 'late', state: 'queued', detail: 'joined after the rollout was planned' });
    expect(r.admission()).toBe(2);
    succeed(r, 'late', T0 + 20);
    expect(r.snap).toMatchObject({ status: 'succeeded', endedAt: new Date(T0 + 20).toISOString() });
  });

  it('reopens an ended rollout for a late host granted at once (granted before registered)', () => {
    // The semaphore reports a grant before the registration when a slot is free.
    const r = rollout(1, { canary: 0 });
    succeed(r, 'h1');
    r.granted('late', OLD, T0);
    expect(r.snap.status).toBe('running');
    expect(r.host('late')!.state).toBe('updating');
    r.queued('late', OLD, T0);
    r.succeeded('late', T0);
    expect(r.snap.status).toBe('succeeded');
  });

  it('reopens an ended rollout for a host back from offline granted at once', () => {
    const r = rollout(2, { canary: 0 });
    r.offline('h2', T0);
    succeed(r, 'h1');
    expect(r.snap.status).toBe('succeeded');
    r.granted('h2', OLD, T0);
    expect(r.snap.status).toBe('running');
    r.failed('h2', 'failed', 'health: 500', true, T0);
    expect(r.snap.status).toBe('failed');
  });

  it('evicts a host that registers again after finishing, keeping its outcome', () => {
    const r = rollout(3, { canary: 0, failureThreshold: 3 });
    succeed(r, 'h1');
    r.granted('h2', OLD, T0);
    r.failed('h2', 'failed', 'health: 500', true, T0);
    r.takeEffects();
    r.queued('h1', OLD, T0);
    r.queued('h2', OLD, T0);
    expect(evicted(r.takeEffects())).toEqual(['h1', 'h2']);
    expect(states(r)).toMatchObject({ h1: 'succeeded', h2: 'failed' });
    // Registering again while updating (a duplicate) changes nothing.
    r.granted('h3', OLD, T0);
    r.takeEffects();
    r.queued('h3', OLD, T0);
    expect(r.takeEffects()).toEqual([]);
    expect(states(r).h3).toBe('updating');
  });

  it('evicts a finished host the semaphore granted at once, keeping its outcome', () => {
    // With a free slot the grant comes before the registration: granted() must keep the outcome too.
    const r = rollout(3, { canary: 0, failureThreshold: 3 });
    succeed(r, 'h1');
    r.granted('h2', OLD, T0);
    r.failed('h2', 'failed', 'health: 500', true, T0);
    r.takeEffects();
    r.granted('h1', OLD, T0);
    r.granted('h2', OLD, T0);
    expect(evicted(r.takeEffects())).toEqual(['h1', 'h2']);
    expect(states(r)).toMatchObject({ h1: 'succeeded', h2: 'failed' });
    expect(r.deadlineOf('h1')).toBeNull();
  });

  it('takes a pending or queued host out when its agent goes offline', () => {
    const r = rollout(4, { canary: 0, batchSize: 1, maxUnavailable: 1 });
    r.granted('h1', OLD, T0);
    r.queued('h2', OLD, T0);
    r.takeEffects();
    r.offline('h1', T0);
    r.offline('h2', T0);
    r.offline('h3', T0);
    expect(evicted(r.takeEffects())).toEqual(['h2']);
    expect(states(r)).toEqual({ h1: 'updating', h2: 'offline', h3: 'offline', h4: 'pending' });
    expect(r.host('h3')!.error).toBe('went offline before its turn');
    // Back online: it registers and takes part again.
    r.queued('h3', OLD, T0);
    expect(states(r).h3).toBe('queued');
    r.offline('h3', T0);
    r.offline('h4', T0);
    r.succeeded('h1', T0);
    // Offline hosts do not hold the rollout open.
    expect(r.snap.status).toBe('succeeded');
  });

  it('puts a host that withdrew its registration back to pending', () => {
    const r = rollout(2, { canary: 0 });
    r.queued('h1', OLD, T0);
    r.withdrew('h1', T0);
    expect(states(r).h1).toBe('pending');
    r.granted('h2', OLD, T0);
    r.withdrew('h2', T0);
    expect(states(r).h2).toBe('updating');
  });

  it('leaves out a pinned host, and ends when it was the last one', () => {
    const r = rollout(2, { canary: 0 });
    r.queued('h2', OLD, T0);
    succeed(r, 'h1');
    r.takeEffects();
    r.leaveOut('h2', T0, 'pinned to cccccccc by bob');
    expect(evicted(r.takeEffects())).toEqual(['h2']);
    expect(r.host('h2')).toMatchObject({ state: 'skipped', error: 'pinned to cccccccc by bob' });
    expect(r.snap.status).toBe('succeeded');
    r.leaveOut('h1', T0, 'pinned');
    expect(states(r).h1).toBe('succeeded');
  });

  it('lets a host left out by a pin rejoin once unpinned (it catches up with its branch)', () => {
    const r = rollout(3, { canary: 0, batchSize: 1, maxUnavailable: 1 });
    r.leaveOut('h2', T0, 'pinned');
    r.granted('h1', OLD, T0);
    r.takeEffects();
    // Unpinned: the agent registers for the newest SHA again, and the slot is taken.
    r.queued('h2', OLD, T0);
    expect(evicted(r.takeEffects())).toEqual([]);
    expect(states(r).h2).toBe('queued');
  });
});

describe('Rollout.deadlineOf', () => {
  it('is the grant time plus hostTimeout for an updating host, else null', () => {
    const r = rollout(2, { canary: 0, hostTimeout: 90 });
    expect(r.deadlineOf('h1')).toBeNull();
    r.granted('h1', OLD, T0 + 500);
    expect(r.host('h1')!.startedAt).toBe(new Date(T0 + 500).toISOString());
    expect(r.deadlineOf('h1')).toBe(T0 + 500 + 90_000);
    r.succeeded('h1', T0 + 600);
    expect(r.deadlineOf('h1')).toBeNull();
    expect(r.deadlineOf('nobody')).toBeNull();
  });

  it('stamps host end times and errors', () => {
    const r = rollout(2, { canary: 0 });
    r.granted('h1', OLD, T0);
    r.failed('h1', 'timed-out', 'no result within 60 s', false, T0 + 60_000);
    expect(r.host('h1')).toMatchObject({ state: 'timed-out', endedAt: new Date(T0 + 60_000).toISOString(), error: 'no result within 60 s', down: true });
    expect(r.snap.updatedAt).toBe(new Date(T0 + 60_000).toISOString());
    expect(decode(RolloutSnapshot, JSON.stringify(r.snap)).ok).toBe(true);
  });
});

describe('Rollout events', () => {
  /** A rollout's life with every kind of change: canary, rolling hosts, a late joiner, a failure, an abort that rolls back. */
  function eventful(): { first: RolloutSnapshot; r: Rollout; effects: RolloutEffect[] } {
    const r = rollout(6, { canary: 1, batchSize: 2, failureThreshold: 2, onAbort: 'rollback' });
    const first = structuredClone(r.snap);
    const effects = r.takeEffects();
    const take = () => effects.push(...r.takeEffects());
    for (const h of ['h1', 'h2', 'h3', 'h4']) r.queued(h, OLD, T0 + 1);
    succeed(r, 'h1', T0 + 2);
    r.granted('h2', OLD, T0 + 3);
    r.queued('late', OLD, T0 + 4);
    r.succeeded('h2', T0 + 5);
    r.granted('h3', OLD, T0 + 6);
    r.failed('h3', 'failed', 'health: 503', true, T0 + 7);
    r.offline('h5', T0 + 8);
    take();
    r.abort(T0 + 9, 'aborted by bob');
    take();
    return { first, r, effects };
  }

  it('numbers every change from 1 without gaps, and snap.seq is the last', () => {
    const { r, effects } = eventful();
    const seqs = effects.flatMap((e) => (e.kind === 'event' ? [e.event.seq] : []));
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(r.snap.seq).toBe(seqs.length);
  });

  it('applied in order to the first snapshot, gives the rollout as it is now (hosts, status, counts)', () => {
    const { first, r, effects } = eventful();
    let replay = first;
    for (const e of effects) if (e.kind === 'event') replay = applyRolloutEvent(replay, e.event);
    expect(replay).toEqual({ ...r.snap, counts: r.counts() });
    expect(r.counts()).toEqual(countHosts(r.snap.hosts));
    expect(replay.status).toBe('aborted');
  });

  it('counts only, for a snapshot without its hosts', () => {
    const { first, r, effects } = eventful();
    let replay: RolloutSnapshot = { ...first, hosts: [], hostsOmitted: first.hosts.length, counts: countHosts(first.hosts) };
    for (const e of effects) if (e.kind === 'event') replay = applyRolloutEvent(replay, e.event);
    expect(replay.counts).toEqual(r.counts());
    expect(replay.hostsOmitted).toBe(r.snap.hosts.length);
  });

  it('restored from its snapshot, decides as before (indexes and counts rebuilt)', () => {
    const { r } = eventful();
    const again = new Rollout(structuredClone(r.snap));
    expect(again.counts()).toEqual(r.counts());
    expect(again.admission()).toBe(r.admission());
    expect(again.host('late')).toEqual(r.host('late'));
  });
});

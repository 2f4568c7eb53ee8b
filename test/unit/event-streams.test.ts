import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventStreams, EVENT_STREAM_DEFAULTS, type StreamSink } from '../../src/hub/api/event-streams.js';
import { HubEvents } from '../../src/hub/hub-events.js';

/** A stream that records what it was sent, with as many unread bytes as the test says. */
function sink(unread = 0): StreamSink & { text: string; ended: boolean; unread: number } {
  const s = {
    text: '',
    ended: false,
    unread,
    write: (text: string) => void (s.text += text),
    buffered: () => s.unread,
    end: () => void (s.ended = true),
  };
  return s;
}

const changes = (text: string): unknown[] => [...text.matchAll(/^event: changed\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]!));

describe('event streams', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const started = (opts: Partial<typeof EVENT_STREAM_DEFAULTS> = {}) => {
    const events = new HubEvents();
    const streams = new EventStreams(events, { ...EVENT_STREAM_DEFAULTS, ...opts });
    streams.start();
    return { events, streams };
  };

  it('opens each stream with its reconnect delay, then sends each area once per window', () => {
    const { events, streams } = started();
    const a = sink();
    const b = sink();
    streams.add(a, 'ann');
    streams.add(b, 'bo');
    expect(a.text).toBe('retry: 3000\n: open\n\n');
    for (let i = 0; i < 10; i++) events.changed('rollouts', 'web.production.0123456789ab');
    events.changed('agents');
    events.changed('agents', 'h1');
    expect(changes(a.text)).toEqual([]);
    vi.advanceTimersByTime(250);
    expect(changes(a.text)).toEqual([{ area: 'rollouts', id: 'web.production.0123456789ab' }, { area: 'agents' }]);
    expect(b.text).toBe(a.text);
    events.changed('jobs', 'r1');
    vi.advanceTimersByTime(250);
    expect(changes(a.text).at(-1)).toEqual({ area: 'jobs', id: 'r1' });
    streams.stop();
  });

  it('names the whole area once more than maxIdsPerArea items of it changed', () => {
    const { events, streams } = started({ maxIdsPerArea: 3 });
    const a = sink();
    streams.add(a, 'ann');
    for (const id of ['h1', 'h2', 'h3']) events.changed('agents', id);
    vi.advanceTimersByTime(250);
    expect(changes(a.text)).toEqual(['h1', 'h2', 'h3'].map((id) => ({ area: 'agents', id })));
    for (const id of ['h1', 'h2', 'h3', 'h4']) events.changed('agents', id);
    vi.advanceTimersByTime(250);
    expect(changes(a.text).slice(3)).toEqual([{ area: 'agents' }]);
    streams.stop();
  });

  it('sends a heartbeat comment while nothing changes', () => {
    const { streams } = started();
    const a = sink();
    streams.add(a, 'ann');
    vi.advanceTimersByTime(45_000);
    expect(a.text.match(/^: heartbeat$/gm)).toHaveLength(3);
    streams.stop();
  });

  it('refuses streams beyond maxStreams, and takes one again once another left', () => {
    const { streams } = started({ maxStreams: 2 });
    const [a, b, c] = [sink(), sink(), sink()];
    expect(streams.add(a, 'ann')).toBe('added');
    expect(streams.add(b, 'bo')).toBe('added');
    expect(streams.add(c, 'cy')).toBe('full');
    expect(c.text).toBe('');
    streams.remove(a);
    expect(streams.add(c, 'cy')).toBe('added');
    expect(streams.open).toBe(2);
    streams.stop();
  });

  it('takes at most maxPerOwner streams of one account, leaving room for the others', () => {
    const { streams } = started({ maxStreams: 10, maxPerOwner: 2 });
    expect([sink(), sink(), sink()].map((s) => streams.add(s, 'ann'))).toEqual(['added', 'added', 'owner-full']);
    expect(streams.add(sink(), 'bo')).toBe('added');
    streams.stop();
  });

  it('ends the streams of accounts removed or changed, and keeps the others', () => {
    const { events, streams } = started();
    const [ann1, ann2, bo] = [sink(), sink(), sink()];
    streams.add(ann1, 'ann');
    streams.add(ann2, 'ann');
    streams.add(bo, 'bo');
    streams.endOwners(['ann', 'cy']);
    expect([ann1.ended, ann2.ended, bo.ended]).toEqual([true, true, false]);
    events.changed('agents');
    vi.advanceTimersByTime(250);
    expect(changes(ann1.text)).toEqual([]);
    expect(changes(bo.text)).toEqual([{ area: 'agents' }]);
    expect(streams.open).toBe(1);
    streams.stop();
  });

  it('ends a stream whose client stopped reading, and keeps the others', () => {
    const { events, streams } = started({ maxBufferedBytes: 1000 });
    const slow = sink(5000);
    const fine = sink();
    streams.add(slow, 'ann');
    streams.add(fine, 'bo');
    events.changed('apps');
    vi.advanceTimersByTime(250);
    expect(slow.ended).toBe(true);
    expect(changes(slow.text)).toEqual([]);
    expect(changes(fine.text)).toEqual([{ area: 'apps' }]);
    expect(streams.open).toBe(1);
    streams.stop();
  });

  it('ends every stream on stop and hears no more notices', () => {
    const { events, streams } = started();
    const a = sink();
    streams.add(a, 'ann');
    events.changed('audit');
    streams.stop();
    expect(a.ended).toBe(true);
    expect(events.listenerCount('changed')).toBe(0);
    vi.advanceTimersByTime(60_000);
    expect(changes(a.text)).toEqual([]);
  });
});
